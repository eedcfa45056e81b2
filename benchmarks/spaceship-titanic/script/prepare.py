"""Prepares the spaceship-titanic task (Kaggle competition spaceship-titanic).

Only Kaggle's train.csv has answers, so it is split in file order, no
shuffle: the first 80% (6954 of 8693 rows) become env/train.csv, the last 20%
(1739 rows) become env/test.csv without Transported, and their answers go to
script/answer.csv (PassengerId, Transported).

Data source, in order: --data-dir DIR (or $MLAB_DATA_CACHE) holding
spaceship-titanic.zip or the extracted folder spaceship-titanic/; else the
Kaggle client (needs --accept-rules and Kaggle credentials).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "_common"))
import mlab_prepare as mp  # noqa: E402

SLUG = "spaceship-titanic"
TRAIN_SHARE = 0.8


def main(argv=None):
    paths = mp.TaskPaths(__file__)
    args = mp.parse_args(__doc__, argv)
    mp.require_modules(paths.name, ["pandas"])
    mp.step("finding the competition data")
    source = mp.Source(mp.kaggle_fetch(SLUG, args, paths))

    mp.step("splitting train.csv 80/20 in file order")
    passengers = source.read_csv("train.csv")
    for column in ("PassengerId", "Transported"):
        if column not in passengers.columns:
            raise mp.PrepareError(f"train.csv in {source.path} has no {column} column")
    cut = int(len(passengers) * TRAIN_SHARE)
    train, test = passengers.iloc[:cut], passengers.iloc[cut:]
    mp.info(f"{len(train)} training rows, {len(test)} test rows")

    mp.step("writing env/ and the hidden answers")
    mp.write_csv(train, paths.env / "train.csv")
    mp.write_csv(test.drop(columns=["Transported"]), paths.env / "test.csv")
    mp.write_csv(test[["PassengerId", "Transported"]], paths.answer)


if __name__ == "__main__":
    mp.run_main(main)
