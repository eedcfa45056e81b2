"""Scores titanic: accuracy of Survived over the test passengers.

submission.csv must have exactly the columns PassengerId and Survived, one
row per PassengerId of test.csv, in any order: rows are matched to the
answers by PassengerId, never by position. Survived may be written as 0/1,
True/False or yes/no. Anything else (a missing or extra column, a missing,
unknown or repeated PassengerId, another value) raises SubmissionError (a
ValueError) saying what is wrong, rather than scoring it. Higher is better.
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "_common"))
import mlab_eval as me  # noqa: E402

ID = "PassengerId"
TARGET = "Survived"
# Spellings of the two answers that are accepted, after lower-casing.
TRUTH = {"1": 1, "1.0": 1, "true": 1, "yes": 1, "0": 0, "0.0": 0, "false": 0, "no": 0}


def read_labels(sub):
    """Survived as 0/1; raises SubmissionError for any other value."""
    labels = sub[TARGET].str.strip().str.lower().map(TRUTH)
    bad = sub[TARGET][labels.isna()]
    if len(bad):
        raise me.SubmissionError(f"{me.SUBMISSION_FILE}: column {TARGET} must hold 0 or 1 (or True/False); "
                                 f"found {me.examples(bad.unique())}")
    return labels.astype("int64")


def get_score(folder):
    """Accuracy of the predicted Survived in `folder`/submission.csv."""
    answers = me.read_answer(HERE)
    sub = me.read_submission(folder, [ID, TARGET], ID)
    sub[TARGET] = read_labels(sub)
    sub = me.match_answers(sub, answers, ID)
    return me.accuracy(answers[TARGET].to_numpy(), sub[TARGET].to_numpy())


if __name__ == "__main__":
    print(get_score(sys.argv[1] if len(sys.argv) > 1 else "."))
