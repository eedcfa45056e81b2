"""Makes the digits data: a fixed 75/25 split of scikit-learn's 8x8 digits.

Writes env/train.csv (id, label, pixel0..pixel63), env/test.csv (id and
pixels, no label) and script/answer.csv (id, label of the test images).
The split comes from a fixed seed, so running this again writes the same
files byte for byte.

The 1797 images ship inside scikit-learn (sklearn.datasets.load_digits):
nothing is downloaded. --data-dir is accepted for uniformity and ignored.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "_common"))
import mlab_prepare as mp  # noqa: E402

SEED = 42
TEST_FRACTION = 0.25
ID = "id"
TARGET = "label"


def load_table():
    import pandas as pd
    from sklearn.datasets import load_digits

    digits = load_digits()
    pixels = digits.data.astype("int64")
    table = pd.DataFrame(pixels, columns=[f"pixel{i}" for i in range(pixels.shape[1])])
    table.insert(0, TARGET, digits.target.astype("int64"))
    return table


def main(argv=None):
    paths = mp.TaskPaths(__file__)
    args = mp.parse_args(__doc__, argv)
    mp.require_modules(paths.name, ["numpy", "pandas", "sklearn"])
    if args.data_dir:
        mp.info("note: --data-dir is ignored; the digits ship inside scikit-learn")
    mp.step("loading the 8x8 digits from scikit-learn")
    table = load_table()
    mp.info(f"{len(table)} images of {table.shape[1] - 1} pixels")

    mp.step(f"splitting {int((1 - TEST_FRACTION) * 100)}/{int(TEST_FRACTION * 100)} with seed {SEED}")
    train, test = mp.seeded_split(table, ID, SEED, TEST_FRACTION, first_id=0)
    mp.info(f"{len(train)} train images, {len(test)} test images")
    mp.write_split(paths, train, test, ID, TARGET)


if __name__ == "__main__":
    mp.run_main(main)
