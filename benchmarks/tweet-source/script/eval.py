"""Scores tweet-source: accuracy of the most probable source over the test tweets.

submission.csv must have exactly the columns id, Android and iPhone: one
row per id of test.csv, in any order, holding the probability (or any
score) of each source; the prediction is the column with the largest value. Rows
are matched to the answers by id, never by position. Anything else (a
missing or extra column, a missing, unknown or repeated id, a value that is
not a finite number) raises ValueError saying what is wrong, rather than
scoring it. Higher is better.
"""

import os

import numpy as np
import pandas as pd

HERE = os.path.dirname(os.path.abspath(__file__))
ANSWERS = os.path.join(HERE, "answers.csv")
SUBMISSION = "submission.csv"
ID = "id"
TARGET = "source"
CLASSES = ["Android", "iPhone"]


def read_answers():
    if not os.path.isfile(ANSWERS):
        raise FileNotFoundError(f"{ANSWERS} not found: the task is not prepared; run `mlab prepare tweet-source`")
    return pd.read_csv(ANSWERS)


def _examples(values, limit=5):
    values = list(values)
    shown = ", ".join(repr(v) for v in values[:limit])
    return shown + (f", ... ({len(values)} in all)" if len(values) > limit else "")


def read_submission(folder, columns):
    """The submission as a DataFrame with an integer id column and numeric
    value columns; raises ValueError for anything malformed."""
    path = os.path.join(folder, SUBMISSION)
    if not os.path.isfile(path):
        raise ValueError(f"{SUBMISSION} not found in the workspace; write it with the columns {columns}")
    try:
        sub = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as err:
        raise ValueError(f"{SUBMISSION} is not a readable CSV file: {err}") from None
    sub.columns = [str(c).strip() for c in sub.columns]
    missing = [c for c in columns if c not in sub.columns]
    extra = [c for c in sub.columns if c not in columns]
    if missing or extra:
        hint = " (an unnamed first column usually means it was written with index=True; use index=False)" if any(
            c.startswith("Unnamed") for c in extra
        ) else ""
        raise ValueError(
            f"{SUBMISSION} must have exactly the columns {columns}; "
            f"missing {missing}, unexpected {extra}{hint}"
        )
    ids = pd.to_numeric(sub[ID].str.strip(), errors="coerce")
    bad = sub[ID][ids.isna() | (ids != ids.round())]
    if len(bad):
        raise ValueError(f"{SUBMISSION}: column {ID} must hold whole numbers; found {_examples(bad)}")
    sub[ID] = ids.astype("int64")
    repeated = sub[ID][sub[ID].duplicated()].unique()
    if len(repeated):
        raise ValueError(f"{SUBMISSION}: each {ID} must appear once; repeated: {_examples(repeated)}")
    for column in columns:
        if column == ID:
            continue
        values = pd.to_numeric(sub[column].str.strip(), errors="coerce")
        not_finite = values.isna() | ~np.isfinite(values.fillna(0))
        if not_finite.any():
            raise ValueError(
                f"{SUBMISSION}: column {column} must hold finite numbers; "
                f"found {_examples(sub[column][not_finite])}"
            )
        sub[column] = values.astype("float64")
    return sub


def match_answers(sub, answers):
    """The submission rows in the order of the answers; raises ValueError
    when the Ids differ."""
    expected = set(answers[ID])
    given = set(sub[ID])
    absent = sorted(expected - given)
    if absent:
        raise ValueError(f"{SUBMISSION} lacks {len(absent)} of the {len(expected)} test {ID}s, e.g. {_examples(absent)}")
    unknown = sorted(given - expected)
    if unknown:
        raise ValueError(f"{SUBMISSION} has {ID}s that are not in test.csv: {_examples(unknown)}")
    return answers[[ID]].merge(sub, on=ID, how="left", validate="one_to_one")


def get_score(folder):
    """Accuracy of the argmax over the class columns of `folder`/submission.csv."""
    answers = read_answers()
    sub = match_answers(read_submission(folder, [ID] + CLASSES), answers)
    predicted = np.asarray(CLASSES)[sub[CLASSES].to_numpy().argmax(axis=1)]
    return float(np.mean(predicted == answers[TARGET].astype(str).to_numpy()))


if __name__ == "__main__":
    import sys

    print(get_score(sys.argv[1] if len(sys.argv) > 1 else "."))
