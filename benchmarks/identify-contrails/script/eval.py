"""Scores identify-contrails: the global Dice coefficient over all test
pixels, as evaluation_details.txt documents (2 |X n Y| / (|X| + |Y|) summed
over every image; 1.0 when both are empty), with rows matched by record_id.

The submission is <folder>/submission.csv with columns record_id and
encoded_pixels (1-based, column-major "start length" runs of a 256 x 256
mask; "-", an empty cell or NaN mean no contrail), one row per test record.
Malformed runs (odd count, out of range, overlapping) are errors.
"""

import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "_common"))
import mlab_eval as me  # noqa: E402
from mlab_eval import SubmissionError  # noqa: E402
SHAPE = (256, 256)


def decode(runs, n_pixels=SHAPE[0] * SHAPE[1], what="mask") -> np.ndarray:
    """A flat boolean mask from a run-length string (column-major order is
    irrelevant to Dice as long as both sides use the same one)."""
    mask = np.zeros(n_pixels, dtype=bool)
    if runs is None or (isinstance(runs, float) and np.isnan(runs)):
        return mask
    text = str(runs).strip()
    if text in ("", "-"):
        return mask
    try:
        numbers = np.asarray(text.split(), dtype=np.int64)
    except ValueError:
        raise SubmissionError(f"{what}: encoded_pixels must be integers, found {text[:40]!r}") from None
    if len(numbers) % 2:
        raise SubmissionError(f"{what}: encoded_pixels needs start/length pairs, found an odd count")
    starts, lengths = numbers[0::2], numbers[1::2]
    if (starts < 1).any() or (lengths < 1).any() or (starts + lengths - 1 > n_pixels).any():
        raise SubmissionError(f"{what}: a run lies outside the {SHAPE[0]}x{SHAPE[1]} image")
    order = np.argsort(starts)
    if (starts[order][1:] < (starts + lengths)[order][:-1]).any():
        raise SubmissionError(f"{what}: runs overlap")
    for start, length in zip(starts, lengths):
        mask[start - 1:start - 1 + length] = True
    return mask


def global_dice(pairs) -> float:
    """2 * sum |P & T| / (sum |P| + sum |T|) over (prediction, truth) masks."""
    intersection = total = 0
    for predicted, truth in pairs:
        intersection += int(np.count_nonzero(predicted & truth))
        total += int(np.count_nonzero(predicted)) + int(np.count_nonzero(truth))
    return 1.0 if total == 0 else 2.0 * intersection / total


def get_score(folder) -> float:
    answer = me.read_answer(HERE, dtype=str, keep_default_na=False)
    sub = me.open_submission(folder, dtype=str)
    for column in ("record_id", "encoded_pixels"):
        if column not in sub.columns:
            raise SubmissionError(f"submission.csv lacks column {column!r}; it has {list(sub.columns)}")
    sub["record_id"] = sub["record_id"].str.strip()
    if sub["record_id"].duplicated().any():
        raise SubmissionError(f"submission.csv repeats record_id {sub['record_id'][sub['record_id'].duplicated()].iloc[0]}")
    extra = sorted(set(sub["record_id"]) - set(answer["record_id"]))
    if extra:
        raise SubmissionError(f"submission.csv has {len(extra)} record(s) not in the test set, e.g. {extra[0]}")
    predicted = dict(zip(sub["record_id"], sub["encoded_pixels"]))
    missing = [r for r in answer["record_id"] if r not in predicted]
    if missing:
        raise SubmissionError(f"submission.csv misses {len(missing)} of {len(answer)} test records, e.g. {missing[0]}")
    pairs = ((decode(predicted[r], what=f"record {r}"), decode(t, what=f"answer {r}"))
             for r, t in zip(answer["record_id"], answer["encoded_pixels"]))
    return global_dice(pairs)


if __name__ == "__main__":
    print(get_score(sys.argv[1] if len(sys.argv) > 1 else "../env"))
