"""The FathomNet scoring function: the mean of the rescaled AUC of the
out-of-sample scores (sAUC = 2 * AUC - 1) and the MAP@20 of the predicted
categories. See evaluation_details.txt.

    import pandas as pd
    from metric import score
    score(solution_df, submission_df, "id")

solution has columns id, categories, osd (0/1); submission has id,
categories (space-separated ids, most likely first) and osd (any number).
"""

import re

import numpy as np
import pandas as pd


def parse_categories(value) -> list:
    """Category ids from "1 9 12", "[1.0, 9.0]" or "1,9"; empty or NaN -> []."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    text = str(value).strip().strip("[](){}")
    ids = []
    for token in re.split(r"[,\s]+", text):
        if token:
            number = float(token)
            if not number.is_integer():
                raise ValueError(f"category id {token!r} is not an integer")
            ids.append(int(number))
    return ids


def average_precision_at_k(actual, predicted, k=20) -> float:
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


def map_at_k(actuals, predicteds, k=20) -> float:
    return float(np.mean([average_precision_at_k(a, p, k) for a, p in zip(actuals, predicteds)]))


def roc_auc(y_true, y_score) -> float:
    """Area under the ROC curve (ties count half), from ranks."""
    y_true = np.asarray(y_true, dtype=int)
    ranks = pd.Series(np.asarray(y_score, dtype=float)).rank(method="average").to_numpy()
    positives = int(y_true.sum())
    negatives = len(y_true) - positives
    if positives == 0 or negatives == 0:
        raise ValueError("AUC needs both in-sample and out-of-sample images")
    return float((ranks[y_true == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def score(solution: pd.DataFrame, submission: pd.DataFrame, row_id_column_name: str,
          out_of_sample_column_name: str = "osd", k: int = 20) -> float:
    sub = submission.set_index(submission[row_id_column_name].astype(str))
    ids = solution[row_id_column_name].astype(str)
    missing = set(ids) - set(sub.index)
    if missing:
        raise ValueError(f"the submission misses {len(missing)} ids, e.g. {sorted(missing)[0]!r}")
    sub = sub.loc[ids]
    sauc = 2 * roc_auc(solution[out_of_sample_column_name], sub[out_of_sample_column_name]) - 1
    actual = [parse_categories(v) for v in solution["categories"]]
    predicted = [parse_categories(v) for v in sub["categories"]]
    return 0.5 * (sauc + map_at_k(actual, predicted, k))
