"""feedback: seeded 98/2 split from a fake Kaggle zip, MCRMSE by text_id,
and the starter's submission scoring by id."""

import math
import runpy

import pandas as pd
import pytest

from conftest import load_eval, make_zip, prepare_inproc

DIMS = ["cohesion", "syntax", "vocabulary", "phraseology", "grammar", "conventions"]


def fake_train(n=100):
    rows = []
    for i in range(n):
        scores = [1.0 + (i + j) % 9 * 0.5 for j in range(6)]
        rows.append({"text_id": f"T{i:04d}", "full_text": f"Essay number {i}, with a comma.\nSecond line.",
                     **dict(zip(DIMS, scores))})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    from conftest import copy_task
    root = tmp_path_factory.mktemp("fb")
    make_zip(root / "data/feedback-prize-english-language-learning.zip",
             {"train.csv": fake_train().to_csv(index=False), "test.csv": "text_id,full_text\nX,y\n"})
    task = copy_task("feedback", root)
    prepare_inproc(task, "--data-dir", str(root / "data"))
    return task


def test_prepare_holds_out_two_percent_with_their_scores(prepared):
    original = fake_train().set_index("text_id")
    train = pd.read_csv(prepared / "env/train.csv")
    test = pd.read_csv(prepared / "env/test.csv")
    answer = pd.read_csv(prepared / "script/answer.csv")
    assert (len(train), len(test)) == (98, 2)
    assert set(train.text_id).isdisjoint(test.text_id)
    assert list(test.columns) == ["text_id", "full_text"]
    assert test.full_text.iloc[0].endswith("\nSecond line.")
    assert answer.text_id.tolist() == test.text_id.tolist()
    for _, row in answer.iterrows():
        assert row[DIMS].tolist() == original.loc[row.text_id, DIMS].tolist()
    sample = pd.read_csv(prepared / "env/sample_submission.csv")
    assert sample.text_id.tolist() == test.text_id.tolist() and (sample[DIMS] == 3.0).all().all()


def test_eval_is_mcrmse_matched_by_text_id(prepared, tmp_path):
    answer = pd.read_csv(prepared / "script/answer.csv")
    a, b = answer.iloc[0], answer.iloc[1]
    # Predict 3.0 everywhere, rows reversed: RMSE of column j is
    # sqrt(((a_j-3)^2 + (b_j-3)^2)/2), then the mean over the six columns.
    expected = sum(math.sqrt(((a[d] - 3) ** 2 + (b[d] - 3) ** 2) / 2) for d in DIMS) / 6
    sub = pd.DataFrame({"text_id": [b.text_id, a.text_id], **{d: [3.0, 3.0] for d in DIMS}})
    sub.to_csv(tmp_path / "submission.csv", index=False)
    assert load_eval(prepared).get_score(tmp_path) == pytest.approx(expected)


def test_eval_rejects_missing_measure_and_non_numbers(prepared, tmp_path):
    ev = load_eval(prepared)
    ids = pd.read_csv(prepared / "script/answer.csv").text_id
    sub = pd.DataFrame({"text_id": ids, **{d: 3.0 for d in DIMS[:5]}})
    sub.to_csv(tmp_path / "submission.csv", index=False)
    with pytest.raises(ValueError, match="conventions"):
        ev.get_score(tmp_path)
    sub["conventions"] = ["x", 3.0]
    sub.to_csv(tmp_path / "submission.csv", index=False)
    with pytest.raises(ValueError, match="finite"):
        ev.get_score(tmp_path)


def test_starter_runs_and_its_submission_scores(prepared, monkeypatch, capsys):
    monkeypatch.chdir(prepared / "env")
    try:
        runpy.run_path("train.py", run_name="__main__")
        assert "final MCRMSE on validation set" in capsys.readouterr().out
        score = load_eval(prepared).get_score(prepared / "env")
        assert 0.5 < score < 4.0
    finally:
        (prepared / "env/submission.csv").unlink(missing_ok=True)
