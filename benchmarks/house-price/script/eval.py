"""Scores house-price: mean absolute error of SalePrice, matched by Id.

The submission is <folder>/submission.csv with columns Id and SalePrice and
exactly one row per test house; a missing, extra or duplicate Id, or a price
that is not a finite number, is an error (never a silent score).
"""

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent


class SubmissionError(ValueError):
    """The submission cannot be scored; the message says why."""


def mean_absolute_error(y_true, y_pred) -> float:
    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    return float(np.mean(np.abs(y_true - y_pred)))


def read_submission(folder, name="submission.csv") -> pd.DataFrame:
    path = Path(folder) / name
    if not path.is_file():
        raise SubmissionError(f"{name} not found in {folder}; the script must write it")
    try:
        return pd.read_csv(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as err:
        raise SubmissionError(f"{name} is not a readable CSV file: {err}") from None


def align(submission: pd.DataFrame, answer: pd.DataFrame, key: str, columns) -> pd.DataFrame:
    """The answer rows joined with the submission on `key`; every answer id
    must appear exactly once and no other id may appear."""
    missing_cols = [c for c in [key, *columns] if c not in submission.columns]
    if missing_cols:
        raise SubmissionError(f"submission.csv lacks column(s) {missing_cols}; "
                              f"it has {list(submission.columns)}")
    sub = submission[[key, *columns]].copy()
    sub[key] = sub[key].astype(str)
    dup = sub[key][sub[key].duplicated()]
    if len(dup):
        raise SubmissionError(f"submission.csv repeats {key} {dup.iloc[0]!r} ({len(dup)} duplicates)")
    ans = answer.copy()
    ans[key] = ans[key].astype(str)
    extra = sorted(set(sub[key]) - set(ans[key]))
    if extra:
        raise SubmissionError(f"submission.csv has {len(extra)} {key}(s) not in the test set, e.g. {extra[0]!r}")
    merged = ans.merge(sub, on=key, how="left", suffixes=("_true", ""), indicator=True)
    absent = merged[merged["_merge"] == "left_only"][key]
    if len(absent):
        raise SubmissionError(f"submission.csv misses {len(absent)} of {len(ans)} test {key}s, "
                              f"e.g. {absent.iloc[0]!r}")
    return merged.drop(columns=["_merge"])


def get_score(folder) -> float:
    answer = pd.read_csv(HERE / "answer.csv")
    merged = align(read_submission(folder), answer, "Id", ["SalePrice"])
    predicted = pd.to_numeric(merged["SalePrice"], errors="coerce")
    if not np.isfinite(predicted.to_numpy(dtype=float)).all():
        bad = merged["SalePrice"][~np.isfinite(predicted.to_numpy(dtype=float))].iloc[0]
        raise SubmissionError(f"SalePrice must be a finite number; found {bad!r}")
    return mean_absolute_error(merged["SalePrice_true"], predicted)


if __name__ == "__main__":
    import sys
    print(get_score(sys.argv[1] if len(sys.argv) > 1 else "../env"))
