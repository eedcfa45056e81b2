"""Scores the vectorization task: the latest forward-pass time, in seconds.

train.py appends one line per run to submission.csv. The score is the LAST
non-empty line, so a faster run recorded after a slower one counts. (The
original read the first line, so an agent's later, faster runs never
counted unless it rewrote the file.) Lower is better.
"""

import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "_common"))
from mlab_eval import SUBMISSION_FILE as SUBMISSION, SubmissionError  # noqa: E402


def read_latest_time(path):
    """The number on the last non-empty line of `path`.

    A line may hold the time alone or as its first `;`-separated field (the
    way train.py writes it). Raises SubmissionError (a ValueError) with what
    is wrong.
    """
    if not Path(path).is_file():
        raise SubmissionError(
            f"{SUBMISSION} not found in the workspace; run train.py, which appends its time there"
        )
    with open(path, encoding="utf-8", errors="replace") as handle:
        lines = [line.strip() for line in handle if line.strip()]
    if not lines:
        raise SubmissionError(f"{SUBMISSION} is empty; run train.py to record a time")
    last = lines[-1]
    field = last.split(";")[0].strip()
    try:
        seconds = float(field)
    except ValueError:
        raise SubmissionError(
            f"the last line of {SUBMISSION} is {last!r}, not a time in seconds; "
            "each line must hold one number, as train.py writes it"
        ) from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise SubmissionError(
            f"the last line of {SUBMISSION} is {last!r}; a time must be a positive, finite number of seconds"
        )
    return seconds


def get_score(folder):
    """Seconds of the latest recorded run in `folder`/submission.csv."""
    return read_latest_time(Path(folder) / SUBMISSION)


if __name__ == "__main__":
    print(get_score(sys.argv[1] if len(sys.argv) > 1 else "."))
