"""Scores imdb: accuracy of the more probable class per test review, with
rows matched by idx (the CSV index), not by row order.

The submission is <folder>/submission.csv as train.py writes it: first column
idx, then columns 0 and 1 with the probabilities of negative and positive.
Every test idx must appear once.
"""

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
N_CLASSES = 2


class SubmissionError(ValueError):
    """The submission cannot be scored; the message says why."""


def argmax_accuracy(labels, scores) -> float:
    """Share of rows whose largest score sits at the true label's column."""
    scores = np.asarray(scores, dtype=float)
    return float(np.mean(np.argmax(scores, axis=1) == np.asarray(labels)))


def read_class_scores(path: Path, n_classes: int) -> pd.DataFrame:
    """The submission as a frame indexed by id (str) with columns 0..n-1."""
    if not path.is_file():
        raise SubmissionError(f"{path.name} not found in {path.parent}; the script must write it")
    try:
        frame = pd.read_csv(path, index_col=0)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError, IndexError) as err:
        raise SubmissionError(f"{path.name} is not a readable CSV file: {err}") from None
    try:
        columns = sorted(int(float(c)) for c in frame.columns)
    except ValueError:
        raise SubmissionError(f"{path.name} must have class columns 0..{n_classes - 1} after the id "
                              f"column; it has {list(frame.columns)}") from None
    if columns != list(range(n_classes)):
        raise SubmissionError(f"{path.name} must have exactly the class columns 0..{n_classes - 1}; "
                              f"it has {list(frame.columns)}")
    frame.columns = [int(float(c)) for c in frame.columns]
    frame = frame[list(range(n_classes))].apply(pd.to_numeric, errors="coerce")
    if not np.isfinite(frame.to_numpy(dtype=float)).all():
        raise SubmissionError(f"{path.name} has a class score that is not a finite number")
    frame.index = frame.index.map(lambda v: str(int(v)) if isinstance(v, (int, float, np.number))
                                  and float(v).is_integer() else str(v))
    if frame.index.duplicated().any():
        raise SubmissionError(f"{path.name} repeats id {frame.index[frame.index.duplicated()][0]!r}")
    return frame


def get_score(folder) -> float:
    answer = pd.read_csv(HERE / "answer.csv")
    answer["idx"] = answer["idx"].astype(str)
    scores = read_class_scores(Path(folder) / "submission.csv", N_CLASSES)
    missing = answer.loc[~answer["idx"].isin(scores.index), "idx"]
    if len(missing):
        raise SubmissionError(f"submission.csv misses {len(missing)} of {len(answer)} test reviews, "
                              f"e.g. idx {missing.iloc[0]!r}")
    extra = scores.index.difference(answer["idx"])
    if len(extra):
        raise SubmissionError(f"submission.csv has {len(extra)} idx value(s) not in the test set, "
                              f"e.g. {extra[0]!r}")
    return argmax_accuracy(answer["label"], scores.loc[answer["idx"]].to_numpy())


if __name__ == "__main__":
    import sys
    print(get_score(sys.argv[1] if len(sys.argv) > 1 else "../env"))
