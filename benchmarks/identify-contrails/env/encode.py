"""Run-length encoding of contrail masks, as evaluation_details.txt describes:
1-based pixel positions in column-major order, "start length" pairs."""

import numpy as np


def rle_encode(mask, fg_val=1):
    """The runs of a 2-D mask as a flat list [start, length, start, length, ...]."""
    flat = np.asarray(mask).T.flatten()  # column-major order
    positions = np.where(flat == fg_val)[0]
    runs = []
    previous = -2
    for p in positions:
        if p > previous + 1:
            runs.extend((p + 1, 0))
        runs[-1] += 1
        previous = p
    return [int(v) for v in runs]


def list_to_string(runs):
    """"start length ..." or "-" for an empty mask."""
    return " ".join(str(v) for v in runs) if runs else "-"


def rle_decode(mask_rle, shape=(256, 256)):
    """A 0/1 array of `shape` from "start length ..." ("-" or "" is empty)."""
    flat = np.zeros(shape[0] * shape[1], dtype=np.uint8)
    if isinstance(mask_rle, str) and mask_rle.strip() not in ("", "-"):
        numbers = np.asarray(mask_rle.split(), dtype=int)
        for start, length in zip(numbers[0::2] - 1, numbers[1::2]):
            flat[start:start + length] = 1
    return flat.reshape(shape, order="F")
