"""Prepares the house-price task (Kaggle competition home-data-for-ml-course).

Only Kaggle's train.csv has prices, so it is split in file order, no shuffle:
the first 80% (1168 rows) become env/train.csv, the last 20% (292 rows) become
env/test.csv without SalePrice, and their prices go to script/answer.csv.
data_description.txt is copied from the competition archive.

Data source, in order: --data-dir DIR (or $MLAB_DATA_CACHE) holding
home-data-for-ml-course.zip or the extracted folder home-data-for-ml-course/;
else the Kaggle client (needs --accept-rules and Kaggle credentials).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "_common"))
import mlab_prepare as mp  # noqa: E402

SLUG = "home-data-for-ml-course"
TRAIN_SHARE = 0.8


def main(argv=None):
    paths = mp.TaskPaths(__file__)
    args = mp.parse_args(__doc__, argv)
    mp.require_modules(paths.name, ["pandas"])
    mp.step("finding the competition data")
    source = mp.Source(mp.kaggle_fetch(SLUG, args, paths))

    mp.step("splitting train.csv 80/20 in file order")
    houses = source.read_csv("train.csv")
    for column in ("Id", "SalePrice"):
        if column not in houses.columns:
            raise mp.PrepareError(f"train.csv in {source.path} has no {column} column")
    cut = int(len(houses) * TRAIN_SHARE)
    train, test = houses.iloc[:cut], houses.iloc[cut:]
    mp.info(f"{len(train)} training rows, {len(test)} test rows")

    mp.step("writing env/ and the hidden answers")
    mp.write_csv(train, paths.env / "train.csv")
    mp.write_csv(test.drop(columns=["SalePrice"]), paths.env / "test.csv")
    mp.write_csv(test[["Id", "SalePrice"]], paths.answer)
    description = source.find("data_description.txt", required=False)
    if description is None:
        raise mp.PrepareError(f"{source.path} has no data_description.txt; is it the {SLUG} data?")
    source.extract(description, paths.env / "data_description.txt", link=False)


if __name__ == "__main__":
    mp.run_main(main)
