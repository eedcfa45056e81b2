"""spaceship-titanic: prepare split from a fake Kaggle zip, accuracy by id."""

import pandas as pd
import pytest

from conftest import load_eval, make_zip, prepare_inproc

ROWS = [f"{i:04d}_01,Earth,{'True' if i % 3 == 0 else 'False'}" for i in range(1, 11)]
TRAIN = "PassengerId,HomePlanet,Transported\n" + "\n".join(ROWS) + "\n"


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    from conftest import copy_task
    root = tmp_path_factory.mktemp("st")
    make_zip(root / "data/spaceship-titanic.zip", {"train.csv": TRAIN, "test.csv": "PassengerId\n9999_01\n"})
    task = copy_task("spaceship-titanic", root)
    prepare_inproc(task, "--data-dir", str(root / "data"))
    return task


def test_prepare_keeps_the_last_fifth_as_hidden_test(prepared):
    test = pd.read_csv(prepared / "env/test.csv")
    answer = pd.read_csv(prepared / "script/answer.csv")
    assert len(pd.read_csv(prepared / "env/train.csv")) == 8
    assert test.PassengerId.tolist() == ["0009_01", "0010_01"]
    assert "Transported" not in test.columns
    assert answer.Transported.tolist() == [True, False]


def test_eval_is_accuracy_matched_by_passenger(prepared, tmp_path):
    ev = load_eval(prepared)
    # 0009 is True, 0010 is False: one right, one wrong, rows in reverse order.
    (tmp_path / "submission.csv").write_text("PassengerId,Transported\n0010_01,True\n0009_01,True\n")
    assert ev.get_score(tmp_path) == pytest.approx(0.5)
    (tmp_path / "submission.csv").write_text("PassengerId,Transported\n0010_01,0\n0009_01,1\n")
    assert ev.get_score(tmp_path) == pytest.approx(1.0)


@pytest.mark.parametrize("content, message", [
    ("PassengerId,Transported\n0009_01,maybe\n0010_01,True\n", "True or False"),
    ("PassengerId,Prediction\n0009_01,True\n0010_01,True\n", "lacks column"),
    ("PassengerId,Transported\n0009_01,True\n", "misses 1"),
])
def test_eval_rejects_malformed_submissions(prepared, tmp_path, content, message):
    (tmp_path / "submission.csv").write_text(content)
    with pytest.raises(ValueError, match=message):
        load_eval(prepared).get_score(tmp_path)
