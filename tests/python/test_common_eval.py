"""benchmarks/_common/mlab_eval.py: the error type, the answer file, the
shared submission readers and metrics that every task's eval.py uses."""

import importlib
import sys

import numpy as np
import pandas as pd
import pytest

import mlab_eval as me
from conftest import BENCHMARKS


def test_submission_error_is_a_value_error():
    assert issubclass(me.SubmissionError, ValueError)


def test_shared_helpers_import_with_the_standard_library_alone(monkeypatch):
    # prepare.py imports mlab_prepare (and through it mlab_eval.ANSWER_FILE)
    # before it may check for pandas.
    for name in ("numpy", "pandas"):
        monkeypatch.setitem(sys.modules, name, None)
    for name in ("mlab_eval", "mlab_prepare"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    prepare = importlib.import_module("mlab_prepare")
    assert importlib.import_module("mlab_eval").ANSWER_FILE == "answer.csv"
    assert prepare.TaskPaths(str(BENCHMARKS / "digits/script/prepare.py")).answer.name == "answer.csv"


def test_examples_show_plain_numbers_and_the_count():
    assert me.examples(np.array([3, 1])) == "3, 1"
    assert me.examples(range(7)) == "0, 1, 2, 3, 4, ... (7 in all)"


def test_read_answer_of_an_unprepared_task_names_the_prepare_command(tmp_path):
    script = tmp_path / "my-task" / "script"
    script.mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="run `mlab prepare my-task`"):
        me.read_answer(script)
    (script / me.ANSWER_FILE).write_text("id,label\n1,2\n")
    assert me.read_answer(script).to_dict("list") == {"id": [1], "label": [2]}


def write(tmp_path, text):
    (tmp_path / me.SUBMISSION_FILE).write_text(text)
    return tmp_path


@pytest.mark.parametrize("text, message", [
    ("id,score\n1,0.5\n", r"missing \['x'\], unexpected \['score'\]"),
    (",id,x\n0,1,0.5\n", "index=False"),
    ("id,x\n1.5,0.5\n", "whole numbers; found '1.5'"),
    ("id,x\n1,0.5\n1,0.7\n", "repeated: 1"),
    ("id,x\n1,nan\n", "column x must hold finite numbers; found 'nan'"),
    ("", "not a readable CSV"),
])
def test_strict_reader_names_what_is_wrong(tmp_path, text, message):
    with pytest.raises(me.SubmissionError, match=message):
        me.read_submission(write(tmp_path, text), ["id", "x"], "id", numeric=["x"])


def test_strict_reader_and_matcher_put_rows_in_answer_order(tmp_path):
    sub = me.read_submission(write(tmp_path, " id , x \n2, 0.25\n1,1e3\n"), ["id", "x"], "id", numeric=["x"])
    answers = pd.DataFrame({"id": [1, 2], "y": [0, 1]})
    matched = me.match_answers(sub, answers, "id")
    assert matched["x"].tolist() == [1000.0, 0.25]
    with pytest.raises(me.SubmissionError, match="lacks 1 of the 3 test ids, e.g. 3"):
        me.match_answers(sub, pd.DataFrame({"id": [1, 2, 3]}), "id")
    with pytest.raises(me.SubmissionError, match="not in test.csv: 2"):
        me.match_answers(sub, pd.DataFrame({"id": [1]}), "id")


def test_lenient_matcher_joins_on_the_key_as_text():
    answer = pd.DataFrame({"k": ["a", "b"], "v": [1.0, 2.0]})
    merged = me.align(pd.DataFrame({"k": ["b", "a"], "v": [5.0, 6.0], "other": 0}), answer, "k", ["v"])
    assert merged["v"].tolist() == [6.0, 5.0] and merged["v_true"].tolist() == [1.0, 2.0]
    with pytest.raises(me.SubmissionError, match="misses 1 of 2"):
        me.align(pd.DataFrame({"k": ["a"], "v": [1]}), answer, "k", ["v"])
    with pytest.raises(me.SubmissionError, match=r"lacks column\(s\) \['v'\]"):
        me.align(pd.DataFrame({"k": ["a"]}), answer, "k", ["v"])


def test_metrics():
    assert me.accuracy([1, 0, 1, 1], [1, 1, 1, 0]) == 0.5
    assert me.argmax_accuracy([1, 0], [[0.2, 0.8], [0.3, 0.7]]) == 0.5
    assert me.mean_absolute_error([1, 2], [2, 4]) == 1.5


def test_an_eval_finds_the_shared_helper_beside_its_script_folder(task_copy):
    # The layout graders see: <benchmarks>/<task>/script/eval.py and
    # <benchmarks>/_common/, nothing else of the repository.
    import subprocess
    task = task_copy("house-price")
    out = subprocess.run([sys.executable, "-c", "import eval; print(eval.me.__file__)"],
                         cwd=task / "script", capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(task.parent / "_common" / "mlab_eval.py")
