"""Prepares the amp-parkinsons-disease-progression-prediction task (Kaggle).

Kaggle's hidden test set cannot be had, so two patients of
train_clinical_data.csv are held out (chosen as the original did: Python's
random.seed(42), then random.sample of the patient ids in file order, 2).
Their rows leave every training file and become example_test_files/ (what the
time-series API serves); their ratings at +0/+6/+12/+24 months after each
visit (up to month 108, where that visit exists and was rated) become
script/answer.csv (prediction_id, rating, visit_month).

Data source, in order: --data-dir DIR (or $MLAB_DATA_CACHE) holding
amp-parkinsons-disease-progression-prediction.zip or the extracted folder;
else the Kaggle client (needs --accept-rules and Kaggle credentials).
"""

import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "_common"))
import mlab_prepare as mp  # noqa: E402

SLUG = "amp-parkinsons-disease-progression-prediction"
HORIZONS = [0, 6, 12, 24]
LAST_MONTH = 108
TEST_PATIENTS = 2
SEED = 42
TRAIN_FILES = ["train_clinical_data.csv", "supplemental_clinical_data.csv",
               "train_peptides.csv", "train_proteins.csv"]


def build_test(clinical_test):
    """test.csv rows (one per visit and UPDRS part) and the answer rows."""
    import pandas as pd

    test_rows, answer_rows = [], []
    rating = {(r.patient_id, r.visit_month): r for r in clinical_test.itertuples(index=False)}
    for visit in clinical_test.itertuples(index=False):
        for part in range(1, 5):
            test_rows.append({
                "visit_id": visit.visit_id, "patient_id": visit.patient_id,
                "visit_month": visit.visit_month,
                "row_id": f"{visit.patient_id}_{int(visit.visit_month)}_updrs_{part}",
                "updrs_test": f"updrs_{part}",
            })
        for h in HORIZONS:
            for part in range(1, 5):
                month = visit.visit_month + h
                later = rating.get((visit.patient_id, month))
                if month > LAST_MONTH or later is None:
                    continue
                value = getattr(later, f"updrs_{part}")
                if pd.isna(value):
                    continue
                answer_rows.append({
                    "prediction_id": f"{visit.patient_id}_{int(visit.visit_month)}_updrs_{part}_plus_{h}_months",
                    "rating": float(value), "visit_month": visit.visit_month,
                })
    return pd.DataFrame(test_rows), pd.DataFrame(answer_rows)


def main(argv=None):
    paths = mp.TaskPaths(__file__)
    args = mp.parse_args(__doc__, argv)
    mp.require_modules(paths.name, ["pandas"])
    mp.step("finding the competition data")
    source = mp.Source(mp.kaggle_fetch(SLUG, args, paths))
    frames = {name: source.read_csv(name) for name in TRAIN_FILES}

    mp.step("holding out two patients (random.seed(42), as the original)")
    clinical = frames["train_clinical_data.csv"]
    patients = clinical["patient_id"].unique().tolist()
    if len(patients) <= TEST_PATIENTS:
        raise mp.PrepareError(f"train_clinical_data.csv has only {len(patients)} patients")
    random.seed(SEED)
    test_patients = random.sample(patients, TEST_PATIENTS)
    mp.info(f"test patients: {test_patients}")

    mp.step("writing the training files without those patients")
    for name, frame in frames.items():
        mp.write_csv(frame[~frame["patient_id"].isin(test_patients)], paths.env / name)

    mp.step("writing example_test_files/ and the hidden answers")
    tests = paths.env / "example_test_files"
    clinical_test = clinical[clinical["patient_id"].isin(test_patients)]
    test_rows, answer = build_test(clinical_test)
    if answer.empty:
        raise mp.PrepareError("the held-out patients have no rated visits; is this the AMP-PD data?")
    mp.write_csv(test_rows, tests / "test.csv")
    for kind in ("peptides", "proteins"):
        frame = frames[f"train_{kind}.csv"]
        mp.write_csv(frame[frame["patient_id"].isin(test_patients)], tests / f"test_{kind}.csv")
    sample = answer.copy()
    sample["rating"] = 0
    mp.write_csv(sample, tests / "sample_submission.csv")
    mp.write_csv(answer, paths.answer)
    mp.info(f"{len(answer)} ratings to predict")


if __name__ == "__main__":
    mp.run_main(main)
