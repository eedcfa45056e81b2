"""Scores amp-parkinsons-disease-progression-prediction: SMAPE of (value+1)
over every answer rating, matched by prediction_id (not row order).

The submission is <folder>/submission.csv, as MockApi writes it: columns
prediction_id and rating (other columns are ignored), one row per answer
prediction_id. Missing, extra or duplicate ids, and ratings that are not
finite numbers >= 0, are errors. The metric is this file's own copy, so an
edited train.py cannot change it.
"""

import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "_common"))
import mlab_eval as me  # noqa: E402
from mlab_eval import SubmissionError  # noqa: E402


def smapep1(y_true, y_pred) -> float:
    """100/n * sum |F-A| / ((A+1 + F+1)/2): SMAPE of the values plus one."""
    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    denominator = (y_true + y_pred) / 2 + 1
    return float(np.mean(np.abs(y_pred - y_true) / denominator) * 100)


def get_score(folder) -> float:
    answer = me.read_answer(HERE)
    merged = me.align(me.open_submission(folder), answer, "prediction_id", ["rating"])
    predicted = pd.to_numeric(merged["rating"], errors="coerce").to_numpy(dtype=float)
    if not np.isfinite(predicted).all() or (predicted < 0).any():
        raise SubmissionError("every rating must be a finite number >= 0")
    return smapep1(merged["rating_true"], predicted)


if __name__ == "__main__":
    print(get_score(sys.argv[1] if len(sys.argv) > 1 else "../env"))
