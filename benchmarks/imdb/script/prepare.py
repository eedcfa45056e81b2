"""Prepares the imdb task from the Large Movie Review Dataset (aclImdb v1).

Writes env/data/train.csv (text, label: 0 negative, 1 positive; 25000
reviews), env/data/unsupervised.csv (text; 50000 unlabelled reviews) and
env/data/test.csv (idx, text; 25000 reviews); the test labels go to
script/answer.csv (idx, label). Rows are shuffled with a fixed seed, so the
position of a review says nothing about its label.

Data source, in order: --data-dir DIR (or $MLAB_DATA_CACHE) holding
aclImdb_v1.tar.gz or the extracted folder aclImdb/; else the archive is
downloaded from Stanford (about 84 MB, resumable, md5 checked): the same data
the Hugging Face `imdb` dataset is built from.
"""

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "_common"))
import mlab_prepare as mp  # noqa: E402

URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
MD5 = "7c2ac02c03563afcf9b574c7e56c153a"
MEMBER = re.compile(r"(?:^|/)aclImdb/(train|test)/(pos|neg|unsup)/(\d+)_(\d+)\.txt$")
SEED = 0


def main(argv=None):
    paths = mp.TaskPaths(__file__)
    args = mp.parse_args(__doc__, argv)
    mp.require_modules(paths.name, ["numpy", "pandas"])
    import pandas as pd

    mp.step("finding the aclImdb archive")
    archive = mp.fetch(URL, ["aclImdb_v1.tar.gz", "aclImdb"], args, paths,
                       "the Large Movie Review Dataset (aclImdb_v1.tar.gz, 84 MB)", md5=MD5)
    # An extracted folder is read from its parent, so member names keep the
    # aclImdb/ prefix as in the archive.
    source = mp.Source(archive.parent if archive.name == "aclImdb" else archive)

    mp.step("reading the reviews")
    rows = {"train": [], "test": [], "unsup": []}
    for name, f in source.iter_members():
        if source.kind == "dir" and not name.startswith("aclImdb/"):
            continue
        match = MEMBER.search(name)
        if not match:
            continue
        split, folder, number, _rating = match.groups()
        text = f.read().decode("utf-8")
        if folder == "unsup":
            rows["unsup"].append((int(number), text))
        else:
            rows[split].append((folder, int(number), text, 1 if folder == "pos" else 0))
        count = sum(len(v) for v in rows.values())
        if count % 20000 == 0:
            mp.info(f"{count} reviews read")
    if not rows["train"] or not rows["test"]:
        raise mp.PrepareError(f"{archive} holds no aclImdb/train or aclImdb/test reviews")
    mp.info(f"{len(rows['train'])} train, {len(rows['test'])} test, {len(rows['unsup'])} unlabelled")

    mp.step("shuffling (fixed seed) and writing env/data/ with the test labels hidden")
    train = pd.DataFrame(sorted(rows["train"]), columns=["folder", "n", "text", "label"])
    test = pd.DataFrame(sorted(rows["test"]), columns=["folder", "n", "text", "label"])
    train = train.sample(frac=1, random_state=SEED).reset_index(drop=True)
    test = test.sample(frac=1, random_state=SEED + 1).reset_index(drop=True)
    test.insert(0, "idx", range(len(test)))
    data = mp.reset_dir(paths.env / "data")
    mp.write_csv(train[["text", "label"]], data / "train.csv")
    mp.write_csv(test[["idx", "text"]], data / "test.csv")
    if rows["unsup"]:
        unsup = pd.DataFrame(sorted(rows["unsup"]), columns=["n", "text"])
        mp.write_csv(unsup[["text"]], data / "unsupervised.csv")
    mp.write_csv(test[["idx", "label"]], paths.answer)


if __name__ == "__main__":
    mp.run_main(main)
