"""Makes the digits data: a fixed 75/25 split of scikit-learn's 8x8 digits.

Writes env/train.csv (id, label, pixel0..pixel63), env/test.csv (id and
pixels, no label) and script/answers.csv (id, label of the test images).
The split comes from a fixed seed, so running this again writes the same
files byte for byte.

The 1797 images ship inside scikit-learn (sklearn.datasets.load_digits):
nothing is downloaded. --data-dir is accepted for uniformity and ignored.
"""

import argparse
import os

import numpy as np
import pandas as pd

HERE = os.path.dirname(os.path.abspath(__file__))
ENV = os.path.normpath(os.path.join(HERE, "..", "env"))
SEED = 42
TEST_FRACTION = 0.25
ID = "id"
TARGET = "label"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="ignored: the images ship inside scikit-learn")
    parser.add_argument("--accept-rules", action="store_true", help="accepted for uniformity; this data has no rules to accept")
    return parser.parse_args()


def load_table():
    from sklearn.datasets import load_digits

    digits = load_digits()
    pixels = digits.data.astype("int64")
    table = pd.DataFrame(pixels, columns=[f"pixel{i}" for i in range(pixels.shape[1])])
    table.insert(0, TARGET, digits.target.astype("int64"))
    return table


def split(table):
    """Shuffles with a fixed seed and numbers the rows in that order, so an
    id says nothing about the image."""
    order = np.random.RandomState(SEED).permutation(len(table))
    shuffled = table.iloc[order].reset_index(drop=True)
    shuffled.insert(0, ID, np.arange(len(shuffled)))
    n_test = int(round(len(shuffled) * TEST_FRACTION))
    return shuffled.iloc[: len(shuffled) - n_test], shuffled.iloc[len(shuffled) - n_test :]


def main():
    args = parse_args()
    if args.data_dir:
        print("note: --data-dir is ignored; the digits ship inside scikit-learn")
    print("==> loading the 8x8 digits from scikit-learn")
    table = load_table()
    print(f"{len(table)} images of {table.shape[1] - 1} pixels")

    print(f"==> splitting {int((1 - TEST_FRACTION) * 100)}/{int(TEST_FRACTION * 100)} with seed {SEED}")
    train, test = split(table)
    print(f"{len(train)} train images, {len(test)} test images")

    print(f"==> writing train.csv and test.csv to {ENV}")
    os.makedirs(ENV, exist_ok=True)
    train.to_csv(os.path.join(ENV, "train.csv"), index=False)
    test.drop(columns=[TARGET]).to_csv(os.path.join(ENV, "test.csv"), index=False)

    print("==> writing the hidden answers to script/answers.csv")
    test[[ID, TARGET]].to_csv(os.path.join(HERE, "answers.csv"), index=False)


if __name__ == "__main__":
    main()
