"""Prepares the feedback task (Kaggle feedback-prize-english-language-learning).

Only Kaggle's train.csv has scores, so it is shuffled with seed 42 and split:
the first 98% (3832 of 3911 essays) become env/train.csv, the rest
env/test.csv (text_id, full_text) with their scores in script/answer.csv.
env/sample_submission.csv lists the test ids with every score 3.0.

Data source, in order: --data-dir DIR (or $MLAB_DATA_CACHE) holding
feedback-prize-english-language-learning.zip or the extracted folder of the
same name; else the Kaggle client (needs --accept-rules and credentials).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "_common"))
import mlab_prepare as mp  # noqa: E402

SLUG = "feedback-prize-english-language-learning"
DIMENSIONS = ["cohesion", "syntax", "vocabulary", "phraseology", "grammar", "conventions"]
TRAIN_SHARE = 0.98
SEED = 42


def main(argv=None):
    paths = mp.TaskPaths(__file__)
    args = mp.parse_args(__doc__, argv)
    mp.require_modules(paths.name, ["pandas"])
    mp.step("finding the competition data")
    source = mp.Source(mp.kaggle_fetch(SLUG, args, paths))

    mp.step("shuffling train.csv (seed 42) and keeping 2% as the test set")
    essays = source.read_csv("train.csv")
    missing = [c for c in ["text_id", "full_text", *DIMENSIONS] if c not in essays.columns]
    if missing:
        raise mp.PrepareError(f"train.csv in {source.path} lacks column(s) {missing}")
    essays = essays.sample(frac=1, random_state=SEED).reset_index(drop=True)
    cut = int(len(essays) * TRAIN_SHARE)
    train, test = essays.iloc[:cut], essays.iloc[cut:]
    mp.info(f"{len(train)} training essays, {len(test)} test essays")

    mp.step("writing env/ and the hidden answers")
    mp.write_csv(train, paths.env / "train.csv")
    mp.write_csv(test[["text_id", "full_text"]], paths.env / "test.csv")
    mp.write_csv(test[["text_id", *DIMENSIONS]], paths.answer)
    sample = test[["text_id"]].copy()
    for name in DIMENSIONS:
        sample[name] = 3.0
    mp.write_csv(sample, paths.env / "sample_submission.csv")


if __name__ == "__main__":
    mp.run_main(main)
