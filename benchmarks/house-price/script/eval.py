"""Scores house-price: mean absolute error of SalePrice, matched by Id.

The submission is <folder>/submission.csv with columns Id and SalePrice and
exactly one row per test house; a missing, extra or duplicate Id, or a price
that is not a finite number, is an error (never a silent score).
"""

import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "_common"))
import mlab_eval as me  # noqa: E402
from mlab_eval import SubmissionError  # noqa: E402


def get_score(folder) -> float:
    answer = me.read_answer(HERE)
    merged = me.align(me.open_submission(folder), answer, "Id", ["SalePrice"])
    predicted = pd.to_numeric(merged["SalePrice"], errors="coerce")
    if not np.isfinite(predicted.to_numpy(dtype=float)).all():
        bad = merged["SalePrice"][~np.isfinite(predicted.to_numpy(dtype=float))].iloc[0]
        raise SubmissionError(f"SalePrice must be a finite number; found {bad!r}")
    return me.mean_absolute_error(merged["SalePrice_true"], predicted)


if __name__ == "__main__":
    print(get_score(sys.argv[1] if len(sys.argv) > 1 else "../env"))
