"""Scores digits: accuracy of the most probable class over the test images.

submission.csv must have exactly the columns id, 0, 1, ..., 9: one row per
id of test.csv, in any order, holding the probability (or any score) of
each digit; the predicted digit is the column with the largest value. Rows
are matched to the answers by id, never by position. Anything else (a
missing or extra column, a missing, unknown or repeated id, a value that is
not a finite number) raises SubmissionError (a ValueError) saying what is
wrong, rather than scoring it. Higher is better.
"""

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "_common"))
import mlab_eval as me  # noqa: E402

ID = "id"
TARGET = "label"
CLASSES = [str(digit) for digit in range(10)]


def get_score(folder):
    """Accuracy of the argmax over the class columns of `folder`/submission.csv."""
    answers = me.read_answer(HERE)
    sub = me.read_submission(folder, [ID] + CLASSES, ID, numeric=CLASSES)
    sub = me.match_answers(sub, answers, ID)
    predicted = np.asarray(CLASSES)[sub[CLASSES].to_numpy().argmax(axis=1)]
    return me.accuracy(predicted, answers[TARGET].astype(str).to_numpy())


if __name__ == "__main__":
    print(get_score(sys.argv[1] if len(sys.argv) > 1 else "."))
