"""Scores feedback: MCRMSE (mean over the six measures of the RMSE), with
rows matched by text_id.

The submission is <folder>/submission.csv with text_id and the six measure
columns, one row per test essay. A missing, extra or duplicate id, a missing
column or a score that is not a finite number is an error.
"""

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
DIMENSIONS = ["cohesion", "syntax", "vocabulary", "phraseology", "grammar", "conventions"]


class SubmissionError(ValueError):
    """The submission cannot be scored; the message says why."""


def mcrmse(y_true, y_pred) -> float:
    """Mean over columns of the root mean squared error of each column."""
    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    return float(np.mean(np.sqrt(np.mean((y_true - y_pred) ** 2, axis=0))))


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
    merged = align(read_submission(folder), answer, "text_id", DIMENSIONS)
    predicted = merged[DIMENSIONS].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    if not np.isfinite(predicted).all():
        raise SubmissionError("every score in submission.csv must be a finite number")
    truth = merged[[f"{d}_true" for d in DIMENSIONS]].to_numpy(dtype=float)
    return mcrmse(truth, predicted)


if __name__ == "__main__":
    import sys
    print(get_score(sys.argv[1] if len(sys.argv) > 1 else "../env"))
