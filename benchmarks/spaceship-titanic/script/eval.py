"""Scores spaceship-titanic: accuracy of Transported, matched by PassengerId.

The submission is <folder>/submission.csv with columns PassengerId and
Transported (True/False; 1/0 and yes/no are read too), one row per test
passenger. A missing, extra or duplicate id, or a value that is not a
boolean, is an error.
"""

import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "_common"))
import mlab_eval as me  # noqa: E402
from mlab_eval import SubmissionError  # noqa: E402
TRUE = {"true", "1", "1.0", "yes", "t"}
FALSE = {"false", "0", "0.0", "no", "f"}


def to_bool(values: pd.Series) -> pd.Series:
    text = values.astype(str).str.strip().str.lower()
    bad = ~text.isin(TRUE | FALSE)
    if bad.any():
        raise SubmissionError(f"Transported must be True or False; found {values[bad].iloc[0]!r}")
    return text.isin(TRUE)


def get_score(folder) -> float:
    answer = me.read_answer(HERE)
    merged = me.align(me.open_submission(folder), answer, "PassengerId", ["Transported"])
    return me.accuracy(to_bool(merged["Transported_true"]), to_bool(merged["Transported"]))


if __name__ == "__main__":
    print(get_score(sys.argv[1] if len(sys.argv) > 1 else "../env"))
