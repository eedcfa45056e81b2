"""Scores imdb: accuracy of the more probable class per test review, with
rows matched by idx (the CSV index), not by row order.

The submission is <folder>/submission.csv as train.py writes it: first column
idx, then columns 0 and 1 with the probabilities of negative and positive.
Every test idx must appear once.
"""

import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "_common"))
import mlab_eval as me  # noqa: E402
from mlab_eval import SubmissionError  # noqa: E402
N_CLASSES = 2


def get_score(folder) -> float:
    answer = me.read_answer(HERE)
    answer["idx"] = answer["idx"].astype(str)
    scores = me.read_class_scores(Path(folder) / "submission.csv", N_CLASSES)
    missing = answer.loc[~answer["idx"].isin(scores.index), "idx"]
    if len(missing):
        raise SubmissionError(f"submission.csv misses {len(missing)} of {len(answer)} test reviews, "
                              f"e.g. idx {missing.iloc[0]!r}")
    extra = scores.index.difference(answer["idx"])
    if len(extra):
        raise SubmissionError(f"submission.csv has {len(extra)} idx value(s) not in the test set, "
                              f"e.g. {extra[0]!r}")
    return me.argmax_accuracy(answer["label"], scores.loc[answer["idx"]].to_numpy())


if __name__ == "__main__":
    print(get_score(sys.argv[1] if len(sys.argv) > 1 else "../env"))
