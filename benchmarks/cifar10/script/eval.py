"""Scores cifar10: accuracy of the most probable class per test image, with
rows matched by image id (the CSV index), not by row order.

The submission is <folder>/submission.csv as train.py writes it: first column
the image id, then ten columns named 0..9 holding each class's probability
(any scores work; the largest wins). Every test id must appear once.
"""

import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "_common"))
import mlab_eval as me  # noqa: E402
from mlab_eval import SubmissionError  # noqa: E402
N_CLASSES = 10


def get_score(folder) -> float:
    answer = me.read_answer(HERE)
    answer["id"] = answer["id"].astype(str)
    scores = me.read_class_scores(Path(folder) / "submission.csv", N_CLASSES)
    missing = answer.loc[~answer["id"].isin(scores.index), "id"]
    if len(missing):
        raise SubmissionError(f"submission.csv misses {len(missing)} of {len(answer)} test ids, "
                              f"e.g. {missing.iloc[0]!r}")
    extra = scores.index.difference(answer["id"])
    if len(extra):
        raise SubmissionError(f"submission.csv has {len(extra)} id(s) not in the test set, e.g. {extra[0]!r}")
    return me.argmax_accuracy(answer["label"], scores.loc[answer["id"]].to_numpy())


if __name__ == "__main__":
    print(get_score(sys.argv[1] if len(sys.argv) > 1 else "../env"))
