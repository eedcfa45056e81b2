"""Scores feedback: MCRMSE (mean over the six measures of the RMSE), with
rows matched by text_id.

The submission is <folder>/submission.csv with text_id and the six measure
columns, one row per test essay. A missing, extra or duplicate id, a missing
column or a score that is not a finite number is an error.
"""

import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "_common"))
import mlab_eval as me  # noqa: E402
from mlab_eval import SubmissionError  # noqa: E402
DIMENSIONS = ["cohesion", "syntax", "vocabulary", "phraseology", "grammar", "conventions"]


def mcrmse(y_true, y_pred) -> float:
    """Mean over columns of the root mean squared error of each column."""
    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    return float(np.mean(np.sqrt(np.mean((y_true - y_pred) ** 2, axis=0))))


def get_score(folder) -> float:
    answer = me.read_answer(HERE)
    merged = me.align(me.open_submission(folder), answer, "text_id", DIMENSIONS)
    predicted = merged[DIMENSIONS].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    if not np.isfinite(predicted).all():
        raise SubmissionError("every score in submission.csv must be a finite number")
    truth = merged[[f"{d}_true" for d in DIMENSIONS]].to_numpy(dtype=float)
    return mcrmse(truth, predicted)


if __name__ == "__main__":
    print(get_score(sys.argv[1] if len(sys.argv) > 1 else "../env"))
