"""amp-parkinsons: two held-out patients from a fake Kaggle folder, SMAPE+1
by prediction_id, and the starter end to end through MockApi."""

import random
import runpy

import numpy as np
import pandas as pd
import pytest

from conftest import load_eval, make_dir, prepare_inproc

TASK = "amp-parkinsons-disease-progression-prediction"
MONTHS = [0, 6, 12, 24, 36]


def fake_files():
    clinical, supplemental, peptides, proteins = [], [], [], []
    for p in range(100, 112):
        for m in MONTHS:
            row = {"visit_id": f"{p}_{m}", "patient_id": p, "visit_month": m,
                   "updrs_1": p % 7 + m / 12, "updrs_2": 3.0, "updrs_3": 10.0 + m / 6,
                   "updrs_4": np.nan if m == 36 else 1.0, "upd23b_clinical_state_on_medication": "On"}
            clinical.append(row)
            peptides.append({"visit_id": f"{p}_{m}", "visit_month": m, "patient_id": p,
                             "UniProt": "O00391", "Peptide": "NEQEQPLGQWHLS", "PeptideAbundance": 11254.3})
            proteins.append({"visit_id": f"{p}_{m}", "visit_month": m, "patient_id": p,
                             "UniProt": "O00391", "NPX": 11254.3})
    for p in range(500, 506):
        for m in MONTHS:
            supplemental.append({"visit_id": f"{p}_{m}", "patient_id": p, "visit_month": m,
                                 "updrs_1": 5.0, "updrs_2": 4.0, "updrs_3": 20.0, "updrs_4": 0.0,
                                 "upd23b_clinical_state_on_medication": "Off"})
    csv = lambda rows: pd.DataFrame(rows).to_csv(index=False)  # noqa: E731
    return {"train_clinical_data.csv": csv(clinical), "supplemental_clinical_data.csv": csv(supplemental),
            "train_peptides.csv": csv(peptides), "train_proteins.csv": csv(proteins),
            "amp_pd_peptide/__init__.py": ""}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    from conftest import copy_task
    root = tmp_path_factory.mktemp("pk")
    make_dir(root / f"data/{TASK}", fake_files())
    task = copy_task(TASK, root)
    prepare_inproc(task, "--data-dir", str(root / "data"))
    return task


def test_prepare_holds_out_the_seeded_patients_everywhere(prepared):
    expected = random.Random(42).sample(list(range(100, 112)), 2)
    env = prepared / "env"
    for name in ["train_clinical_data.csv", "train_peptides.csv", "train_proteins.csv"]:
        ids = set(pd.read_csv(env / name).patient_id)
        assert ids == set(range(100, 112)) - set(expected), name
    test = pd.read_csv(env / "example_test_files/test.csv")
    assert set(test.patient_id) == set(expected)
    assert len(test) == 2 * len(MONTHS) * 4
    assert set(pd.read_csv(env / "example_test_files/test_proteins.csv").patient_id) == set(expected)


def test_answers_cover_existing_rated_visits_only(prepared):
    answer = pd.read_csv(prepared / "script/answer.csv")
    # Per patient, (visit, horizon) pairs whose target visit exists:
    # 0:+0,+6,+12,+24  6:+0,+6  12:+0,+12,+24  24:+0,+12  36:+0  -> 12, times 4 parts = 48;
    # updrs_4 is missing at month 36, reached 3 ways (12+24, 24+12, 36+0): 45 per patient.
    assert len(answer) == 90
    assert answer.prediction_id.is_unique
    p = int(answer.prediction_id.iloc[0].split("_")[0])
    row = answer.set_index("prediction_id").loc[f"{p}_12_updrs_3_plus_24_months"]
    assert row.rating == pytest.approx(10.0 + 36 / 6) and row.visit_month == 12
    sample = pd.read_csv(prepared / "env/example_test_files/sample_submission.csv")
    assert (sample.rating == 0).all() and sample.prediction_id.tolist() == answer.prediction_id.tolist()


def test_smapep1_by_hand(prepared):
    ev = load_eval(prepared)
    # |0-0|/1 = 0 and |4-2|/((2+4)/2+1) = 0.5: mean 0.25, times 100.
    assert ev.smapep1([0, 2], [0, 4]) == pytest.approx(25.0)


def test_eval_matches_by_prediction_id(prepared, tmp_path):
    answer = pd.read_csv(prepared / "script/answer.csv")
    sub = answer.sample(frac=1, random_state=0).copy()
    sub["rating"] = sub["rating"] + 1
    sub.to_csv(tmp_path / "submission.csv", index=False)
    a = answer.rating.to_numpy()
    expected = np.mean([1 / ((x + x + 1) / 2 + 1) for x in a]) * 100
    assert load_eval(prepared).get_score(tmp_path) == pytest.approx(expected)
    sub.iloc[1:].to_csv(tmp_path / "submission.csv", index=False)
    with pytest.raises(ValueError, match="misses 1"):
        load_eval(prepared).get_score(tmp_path)
    sub["rating"] = -1.0
    sub.to_csv(tmp_path / "submission.csv", index=False)
    with pytest.raises(ValueError, match=">= 0"):
        load_eval(prepared).get_score(tmp_path)


def test_starter_predicts_through_the_api_and_scores(prepared, monkeypatch, capsys):
    import sklearn.ensemble

    class SmallForest(sklearn.ensemble.RandomForestRegressor):
        """The starter's forest with fewer trees: same flow, a tenth of the time."""
        def __init__(self, n_estimators=5, **kw):
            super().__init__(n_estimators=n_estimators, **kw)

    monkeypatch.setattr(sklearn.ensemble, "RandomForestRegressor", SmallForest)
    monkeypatch.chdir(prepared / "env")
    monkeypatch.syspath_prepend(str(prepared / "env"))
    try:
        runpy.run_path("train.py", run_name="__main__")
        assert "Overall cv score of the group model" in capsys.readouterr().out
        score = load_eval(prepared).get_score(prepared / "env")
        assert 0 <= score < 100
    finally:
        (prepared / "env/submission.csv").unlink(missing_ok=True)
