"""Scores ogbn-arxiv: accuracy of the predicted class of each test node.

The submission is <folder>/submission.csv as train.py writes it: one column
of integer class ids, one row per test node in test_idx order (the original
format, which carries no ids). A file with columns node_id and label is also
accepted and then matched by node id. A wrong row count or a value that is
not an integer is an error.
"""

import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "_common"))
import mlab_eval as me  # noqa: E402
from mlab_eval import SubmissionError  # noqa: E402


def as_class_ids(values: pd.Series) -> np.ndarray:
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    if not np.isfinite(numbers).all() or not np.all(numbers == np.round(numbers)):
        raise SubmissionError("every prediction in submission.csv must be an integer class id")
    return numbers.astype(np.int64)


def get_score(folder) -> float:
    answer = me.read_answer(HERE)
    sub = me.open_submission(folder)
    if {"node_id", "label"} <= set(sub.columns):
        ids = as_class_ids(sub["node_id"])
        if len(set(ids)) != len(ids):
            raise SubmissionError("submission.csv repeats a node_id")
        if set(ids) != set(answer["node_id"]):
            raise SubmissionError("the node_id column must list exactly the test nodes")
        predicted = dict(zip(ids, as_class_ids(sub["label"])))
        return me.accuracy(answer["label"], [predicted[i] for i in answer["node_id"]])
    if sub.shape[1] != 1:
        raise SubmissionError(f"submission.csv must have one column of class ids (or node_id,label); "
                              f"it has {list(sub.columns)}")
    if len(sub) != len(answer):
        raise SubmissionError(f"submission.csv has {len(sub)} rows; expected one per test node "
                              f"({len(answer)}), in test_idx order")
    return me.accuracy(answer["label"], as_class_ids(sub.iloc[:, 0]))


if __name__ == "__main__":
    print(get_score(sys.argv[1] if len(sys.argv) > 1 else "../env"))
