"""Scores ames-housing: mean absolute error of Sale_Price over the test houses.

submission.csv must have exactly the columns Id and Sale_Price, one row per
Id of test.csv, in any order: rows are matched to the answers by Id, never
by position. Anything else (a missing or extra column, a missing, unknown or
repeated Id, a price that is not a finite number) raises SubmissionError (a
ValueError) saying what is wrong, rather than scoring it. Lower is better.
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "_common"))
import mlab_eval as me  # noqa: E402

ID = "Id"
TARGET = "Sale_Price"


def get_score(folder):
    """Mean absolute error of the predicted Sale_Price in `folder`/submission.csv."""
    answers = me.read_answer(HERE)
    sub = me.read_submission(folder, [ID, TARGET], ID, numeric=[TARGET])
    sub = me.match_answers(sub, answers, ID)
    return me.mean_absolute_error(answers[TARGET].to_numpy(dtype="float64"), sub[TARGET].to_numpy())


if __name__ == "__main__":
    print(get_score(sys.argv[1] if len(sys.argv) > 1 else "."))
