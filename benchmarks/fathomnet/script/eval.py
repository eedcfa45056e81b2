"""Scores fathomnet: (sAUC + MAP@20) / 2, rows matched by image id.

The submission is <folder>/submission.csv with columns id, categories and
osd, one row per evaluation image. categories are category ids, most likely
first, separated by spaces (the Kaggle format); "[1.0, 9.0]"-style lists, as
the original starter wrote, are read too, and an empty cell means no
category. osd is any finite number. The out-of-sample truth is fixed by
prepare.py (an image is out of sample when it shows a category absent from
training), never drawn at random.

The metric code is this file's own (env/metric.py holds the same functions
for the agent), so an edited workspace cannot change how it is scored.
"""

import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "_common"))
import mlab_eval as me  # noqa: E402
from mlab_eval import SubmissionError  # noqa: E402
K = 20


def parse_categories(value) -> list:
    """Category ids from "1 9 12", "[1.0, 9.0]" or "1,9"; empty or NaN -> []."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    text = str(value).strip().strip("[](){}")
    ids = []
    for token in re.split(r"[,\s]+", text):
        if not token:
            continue
        try:
            number = float(token)
        except ValueError:
            raise SubmissionError(f"categories must be category ids separated by spaces; "
                                  f"found {value!r}") from None
        if not number.is_integer():
            raise SubmissionError(f"category id {token!r} in {value!r} is not an integer")
        ids.append(int(number))
    return ids


def average_precision_at_k(actual, predicted, k=K) -> float:
    """AP@k of one ranked prediction list; a repeated id counts once."""
    actual = set(actual)
    if not actual:
        return 0.0
    hits, total, seen = 0, 0.0, set()
    for rank, category in enumerate(list(predicted)[:k], start=1):
        if category in actual and category not in seen:
            hits += 1
            total += hits / rank
        seen.add(category)
    return total / min(len(actual), k)


def map_at_k(actuals, predicteds, k=K) -> float:
    return float(np.mean([average_precision_at_k(a, p, k) for a, p in zip(actuals, predicteds)]))


def roc_auc(y_true, y_score) -> float:
    """Area under the ROC curve (ties count half), from ranks."""
    y_true = np.asarray(y_true, dtype=int)
    ranks = pd.Series(np.asarray(y_score, dtype=float)).rank(method="average").to_numpy()
    positives = int(y_true.sum())
    negatives = len(y_true) - positives
    if positives == 0 or negatives == 0:
        raise ValueError("AUC needs both in-sample and out-of-sample images in the answers")
    return float((ranks[y_true == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def fathomnet_score(answer: pd.DataFrame, submission: pd.DataFrame) -> float:
    """(sAUC + MAP@20) / 2 of a submission already aligned row by row."""
    sauc = 2 * roc_auc(answer["osd"], submission["osd"]) - 1
    actual = [parse_categories(v) for v in answer["categories"]]
    predicted = [parse_categories(v) for v in submission["categories"]]
    return 0.5 * (sauc + map_at_k(actual, predicted))


def get_score(folder) -> float:
    answer = me.read_answer(HERE, dtype={"id": str, "categories": str})
    sub = me.open_submission(folder, dtype={"id": str, "categories": str})
    missing_cols = [c for c in ("id", "categories", "osd") if c not in sub.columns]
    if missing_cols:
        raise SubmissionError(f"submission.csv lacks column(s) {missing_cols}; it has {list(sub.columns)}")
    if sub["id"].duplicated().any():
        raise SubmissionError(f"submission.csv repeats id {sub['id'][sub['id'].duplicated()].iloc[0]!r}")
    extra = sorted(set(sub["id"]) - set(answer["id"]))
    if extra:
        raise SubmissionError(f"submission.csv has {len(extra)} id(s) not among the evaluation images, "
                              f"e.g. {extra[0]!r}")
    missing = sorted(set(answer["id"]) - set(sub["id"]))
    if missing:
        raise SubmissionError(f"submission.csv misses {len(missing)} of {len(answer)} evaluation images, "
                              f"e.g. {missing[0]!r}")
    sub = sub.set_index("id").loc[answer["id"]].reset_index()
    osd = pd.to_numeric(sub["osd"], errors="coerce").to_numpy(dtype=float)
    if not np.isfinite(osd).all():
        raise SubmissionError("every osd value must be a finite number")
    sub["osd"] = osd
    return fathomnet_score(answer, sub)


if __name__ == "__main__":
    print(get_score(sys.argv[1] if len(sys.argv) > 1 else "../env"))
