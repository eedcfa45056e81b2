"""Prepares identify-contrails (Kaggle google-research-identify-contrails-
reduce-global-warming; about 450 GB).

The competition's test labels are not public, so its validation records
become the test set, as in the original: env/train/ holds the training
records; env/test/ the validation records without their masks; the masks go
to script/answer.csv as run-length encodings (record_id, encoded_pixels).
Kaggle's own test/ is not used. From an extracted folder, files are hard
linked (no copy) when on the same file system.

Data source, in order: --data-dir DIR (or $MLAB_DATA_CACHE) holding the
extracted folder google-research-identify-contrails-reduce-global-warming/
(with train/ and validation/) or its .zip; else the Kaggle client (needs
--accept-rules, Kaggle credentials and the disk space).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "_common"))
import mlab_prepare as mp  # noqa: E402

SLUG = "google-research-identify-contrails-reduce-global-warming"
MASK = "human_pixel_masks.npy"
HIDDEN = {MASK, "human_individual_masks.npy"}


def rle(mask) -> str:
    """Column-major, 1-based "start length" runs; "-" when empty."""
    import numpy as np
    flat = np.asarray(mask).reshape(mask.shape[0], mask.shape[1]).T.flatten() == 1
    padded = np.concatenate([[False], flat, [False]])
    changes = np.flatnonzero(padded[1:] != padded[:-1])
    starts, ends = changes[0::2], changes[1::2]
    if len(starts) == 0:
        return "-"
    return " ".join(f"{s + 1} {e - s}" for s, e in zip(starts, ends))


def records(source, split):
    """{record_id: [member names]} of one split folder."""
    out = {}
    for name in source.names():
        parts = name.split("/")
        if len(parts) >= 3 and parts[-3] == split:
            out.setdefault(parts[-2], []).append(name)
    return out


def main(argv=None):
    import numpy as np
    paths = mp.TaskPaths(__file__)
    args = mp.parse_args(__doc__, argv)
    mp.require_modules(paths.name, ["numpy", "pandas"])
    import pandas as pd

    mp.step("finding the competition data")
    source = mp.Source(mp.kaggle_fetch(SLUG, args, paths))
    train, valid = records(source, "train"), records(source, "validation")
    if not train or not valid:
        raise mp.PrepareError(f"{source.path} must hold train/<record_id>/ and validation/<record_id>/ folders")
    mp.info(f"{len(train)} training records, {len(valid)} validation records (the test set)")

    mp.step("linking the training records into env/train/")
    out = mp.reset_dir(paths.env / "train")
    for n, (record, members) in enumerate(sorted(train.items()), start=1):
        for name in members:
            source.extract(name, out / record / name.split("/")[-1])
        if n % 2000 == 0:
            mp.info(f"{n} / {len(train)} records")

    mp.step("writing env/test/ without masks, and their masks to script/answer.csv")
    out = mp.reset_dir(paths.env / "test")
    answers = []
    for record, members in sorted(valid.items()):
        mask_name = next((m for m in members if m.endswith("/" + MASK)), None)
        if mask_name is None:
            raise mp.PrepareError(f"validation record {record} has no {MASK}")
        with source.open(mask_name) as f:
            answers.append((record, rle(np.load(f))))
        for name in members:
            if name.split("/")[-1] not in HIDDEN:
                source.extract(name, out / record / name.split("/")[-1])
    mp.write_csv(pd.DataFrame(answers, columns=["record_id", "encoded_pixels"]), paths.answer)
    sample = pd.DataFrame({"record_id": [r for r, _ in answers], "encoded_pixels": "-"})
    mp.write_csv(sample, paths.env / "sample_submission.csv")
    for meta in ("train_metadata.json", "validation_metadata.json"):
        name = source.find(meta, required=False)
        if name is not None:
            source.extract(name, paths.env / meta, link=False)


if __name__ == "__main__":
    mp.run_main(main)
