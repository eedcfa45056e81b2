"""Prepares the fathomnet task (Kaggle fathomnet-out-of-sample-detection).

The competition's evaluation images have no public labels, so the test set
is carved out of the training images:
  1. the training list is shuffled with seed 42 and the last 2% are held out
     (in-sample test images, as the original did);
  2. categories are then drawn in a seeded order and all training images
     showing them are held out too, until about as many images as in step 1;
  3. a test image is out of sample (osd = 1) exactly when it shows a category
     that no remaining training image shows.
env/ gets the training part of multilabel_classification/train.csv and
object_detection/train.json, the test images in object_detection/eval.json
(no annotations), category_key.csv and images/ (train and test images);
script/answer.csv gets id, categories ("1 9", space separated) and osd.

Data source, in order: --data-dir DIR (or $MLAB_DATA_CACHE) holding
fathomnet-out-of-sample-detection.zip or the extracted folder, and the images
as DIR/fathomnet/images/<id>.png or DIR/images/<id>.png (or images/ inside the
extracted folder); else the Kaggle client (needs --accept-rules) and the
images are downloaded from the coco_url of each image in train.json
(resumable: finished images are kept).
"""

import concurrent.futures
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "_common"))
import mlab_prepare as mp  # noqa: E402

SLUG = "fathomnet-out-of-sample-detection"
SEED = 42
TEST_SHARE = 0.02


def parse_categories(text):
    """Ids from Kaggle's "[1.0, 9.0]" form."""
    text = str(text).strip().strip("[]")
    return [int(float(t)) for t in text.replace(",", " ").split()]


def choose_split(frame):
    """(train ids, test ids, out-of-sample categories) as the module doc says."""
    shuffled = frame.sample(frac=1, random_state=SEED).reset_index(drop=True)
    cut = int(len(shuffled) * (1 - TEST_SHARE))
    rest, test_in = shuffled.iloc[:cut], shuffled.iloc[cut:]
    categories = dict(zip(frame["id"], frame["categories"].map(parse_categories)))
    target = max(1, len(test_in))
    candidates = sorted({c for i in rest["id"] for c in categories[i]})
    random.Random(SEED).shuffle(candidates)
    out, held = set(), []
    for category in candidates:
        if len(out) >= target:
            break
        showing = {i for i in rest["id"] if category in categories[i]} - out
        if showing and len(out) + len(showing) <= max(target * 3 // 2, 1):
            held.append(category)
            out |= showing
    train_ids = [i for i in rest["id"] if i not in out]
    test_ids = sorted(set(test_in["id"]) | out)
    return train_ids, test_ids, categories, held


def find_images(args, paths, source):
    found = mp.find_in_data_dir(args.data_dir, paths.name, ["images", "fathomnet-images"])
    if found is None and source.kind == "dir" and (source.path / "images").is_dir():
        found = source.path / "images"
    return found


def download_images(images, folder):
    """Fetches every image not yet in `folder`, 8 at a time."""
    todo = [im for im in images if not (folder / im["file_name"]).exists()]
    mp.info(f"{len(images) - len(todo)} images already here, {len(todo)} to download")

    def one(im):
        if not im.get("coco_url"):
            raise mp.PrepareError(f"train.json has no coco_url for {im['file_name']}")
        mp.download(im["coco_url"], folder / im["file_name"], quiet=True)

    done = 0
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        for future in concurrent.futures.as_completed([pool.submit(one, im) for im in todo]):
            future.result()
            done += 1
            if done % 100 == 0 or done == len(todo):
                mp.info(f"{done} / {len(todo)} images downloaded")


def main(argv=None):
    paths = mp.TaskPaths(__file__)
    args = mp.parse_args(__doc__, argv)
    mp.require_modules(paths.name, ["pandas"])
    import pandas as pd

    mp.step("finding the competition data")
    source = mp.Source(mp.kaggle_fetch(SLUG, args, paths))
    labels = source.read_csv("multilabel_classification/train.csv", dtype={"id": str})
    detection = json.loads(source.read_bytes(source.find("object_detection/train.json")))

    mp.step("choosing the test images (2% in sample, plus held-out categories)")
    train_ids, test_ids, categories, held = choose_split(labels)
    train_cats = {c for i in train_ids for c in categories[i]}
    osd = {i: int(any(c not in train_cats for c in categories[i])) for i in test_ids}
    if len(set(osd.values())) < 2:
        raise mp.PrepareError("could not make both in-sample and out-of-sample test images; "
                              "is this the full FathomNet training data?")
    mp.info(f"{len(train_ids)} training images, {len(test_ids)} test images "
            f"({sum(osd.values())} out of sample; held-out categories {sorted(held)})")

    mp.step("finding the images")
    by_stem = {Path(im["file_name"]).stem: im for im in detection["images"]}
    needed = [by_stem[i] for i in train_ids + test_ids if i in by_stem]
    if len(needed) != len(train_ids) + len(test_ids):
        raise mp.PrepareError("object_detection/train.json lacks images listed in train.csv")
    folder = find_images(args, paths, source)
    if folder is None:
        folder = mp.download_dir(args.data_dir, paths) / "fathomnet-images"
        folder.mkdir(parents=True, exist_ok=True)
        mp.step(f"downloading {len(needed)} images into {folder}")
        try:
            download_images(needed, folder)
        except mp.OfflineError as err:
            raise mp.PrepareError(
                f"{err}.\nThe images are not in the competition archive. On a machine with internet, run "
                f"this prepare there (or the competition's download_images.py) and put the images at "
                f"DIR/{paths.name}/images/<id>.png, then run `mlab prepare {paths.name} --data-dir DIR`"
            ) from None
    absent = [im["file_name"] for im in needed if not (folder / im["file_name"]).exists()]
    if absent:
        raise mp.PrepareError(f"{len(absent)} images are missing from {folder}, e.g. {absent[0]}")

    mp.step("writing env/ (images, training labels, eval.json) and the hidden answers")
    images = mp.reset_dir(paths.env / "images")
    for im in needed:
        mp.link_or_copy(folder / im["file_name"], images / im["file_name"])
    train_set = set(train_ids)
    mp.write_csv(labels[labels["id"].isin(train_set)], paths.env / "multilabel_classification/train.csv")
    train_images = [by_stem[i] for i in train_ids]
    train_image_ids = {im["id"] for im in train_images}
    train_json = {**detection, "images": train_images,
                  "annotations": [a for a in detection.get("annotations", [])
                                  if a["image_id"] in train_image_ids]}
    eval_json = {k: v for k, v in detection.items() if k != "annotations"}
    eval_json["images"] = [by_stem[i] for i in test_ids]
    mp.write_text(paths.env / "object_detection/train.json", json.dumps(train_json))
    mp.write_text(paths.env / "object_detection/eval.json", json.dumps(eval_json))
    source.extract(source.find("category_key.csv"), paths.env / "category_key.csv", link=False)
    answer = pd.DataFrame({"id": test_ids,
                           "categories": [" ".join(str(c) for c in sorted(set(categories[i]))) for i in test_ids],
                           "osd": [osd[i] for i in test_ids]})
    mp.write_csv(answer, paths.answer)


if __name__ == "__main__":
    mp.run_main(main)
