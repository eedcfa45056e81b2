"""Loads the BabyLM data in babylm_data/ as a Hugging Face DatasetDict.

    from babyLM_for_hf import load_babylm
    raw = load_babylm("babyLM-10M")    # splits: train, validation

Each example is one line of the corpus ({"text": line}); blank lines become
empty strings. The train split is the chosen corpus (babylm_data/babylm_10M,
or babylm_100M when present), the validation split is babylm_data/babylm_dev.
The test split is held out for scoring. Paths are resolved from this file's
own folder, so it works whatever the current directory is.
"""

import os

DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "babylm_data")
SOURCES = ["aochildes", "bnc_spoken", "cbt", "children_stories", "gutenberg",
           "open_subtitles", "qed", "simple_wikipedia", "switchboard", "wikipedia"]
CONFIGS = {"babyLM-10M": "babylm_10M", "babyLM-100M": "babylm_100M"}


def split_files(folder, suffix, data_dir=DATA_DIR):
    """The ten source files of one split, in the fixed source order."""
    return [os.path.join(data_dir, folder, f"{source}.{suffix}") for source in SOURCES]


def read_lines(files):
    """Lines of the files in order, newline kept; blank lines become ""."""
    lines = []
    for path in files:
        with open(path, encoding="utf-8") as f:
            lines.extend(line if line.strip() else "" for line in f)
    return lines


def load_babylm(config="babyLM-10M", data_dir=DATA_DIR):
    import datasets

    if config not in CONFIGS:
        raise ValueError(f"unknown config {config!r}; choose one of {sorted(CONFIGS)}")
    splits = {
        "train": read_lines(split_files(CONFIGS[config], "train", data_dir)),
        "validation": read_lines(split_files("babylm_dev", "dev", data_dir)),
    }
    return datasets.DatasetDict({name: datasets.Dataset.from_dict({"text": lines})
                                 for name, lines in splits.items()})
