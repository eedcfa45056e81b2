"""Prepares the cifar10 task from the CIFAR-10 python archive.

Writes env/data/cifar10_train.npz (images: 50000x32x32x3 uint8, labels) and
env/data/cifar10_test.npz (images and ids 0..9999, no labels), plus
env/data/classes.txt; the test labels go to script/answer.csv (id, label).

Data source, in order: --data-dir DIR (or $MLAB_DATA_CACHE) holding
cifar-10-python.tar.gz (the file torchvision downloads) or its extracted
folder cifar-10-batches-py/; else the archive is downloaded from the
CIFAR-10 site (about 170 MB, resumable, md5 checked).
"""

import pickle
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "_common"))
import mlab_prepare as mp  # noqa: E402

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
MD5 = "c58f30108f718f92721af3b95e74349a"
TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]


def read_batch(source, name):
    import numpy as np
    batch = pickle.loads(source.read_bytes(source.find(f"cifar-10-batches-py/{name}")), encoding="bytes")
    data = np.asarray(batch[b"data"], dtype=np.uint8)
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy()
    labels = np.asarray(batch[b"labels"], dtype=np.int64)
    if len(images) != len(labels):
        raise mp.PrepareError(f"{name}: {len(images)} images but {len(labels)} labels")
    return images, labels


def main(argv=None):
    import numpy as np
    paths = mp.TaskPaths(__file__)
    args = mp.parse_args(__doc__, argv)
    mp.require_modules(paths.name, ["numpy", "pandas"])
    import pandas as pd

    mp.step("finding the CIFAR-10 archive")
    archive = mp.fetch(URL, ["cifar-10-python.tar.gz", "cifar-10-batches-py"], args, paths,
                       "the CIFAR-10 python archive (cifar-10-python.tar.gz, 170 MB)", md5=MD5)
    if archive.name == "cifar-10-batches-py":
        archive = archive.parent
    source = mp.Source(archive)

    mp.step("reading the five training batches and the test batch")
    parts = [read_batch(source, name) for name in TRAIN_BATCHES]
    train_images = np.concatenate([p[0] for p in parts])
    train_labels = np.concatenate([p[1] for p in parts])
    test_images, test_labels = read_batch(source, "test_batch")
    meta = pickle.loads(source.read_bytes(source.find("cifar-10-batches-py/batches.meta")), encoding="bytes")
    classes = [c.decode() for c in meta[b"label_names"]]
    mp.info(f"{len(train_images)} training images, {len(test_images)} test images")

    mp.step("writing env/data/ (test labels hidden) and script/answer.csv")
    data = mp.reset_dir(paths.env / "data")
    np.savez(data / "cifar10_train.npz", images=train_images, labels=train_labels)
    ids = np.arange(len(test_images))
    np.savez(data / "cifar10_test.npz", images=test_images, ids=ids)
    mp.write_text(data / "classes.txt", "\n".join(classes) + "\n")
    mp.write_csv(pd.DataFrame({"id": ids, "label": test_labels}), paths.answer)


if __name__ == "__main__":
    mp.run_main(main)
