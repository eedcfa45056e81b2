"""Prepares the babylm task from the BabyLM 2023 data (babylm_data.zip).

env/babylm_data/ gets babylm_10M/ (the training corpus) and babylm_dev/ (the
validation split); the test split babylm_test/ goes to script/babylm_data/,
hidden from the agent. babylm_100M and __MACOSX are skipped, as the original
did.

Data source, in order: --data-dir DIR (or $MLAB_DATA_CACHE) holding
babylm_data.zip or the extracted folder babylm_data/; else the zip is
downloaded from the BabyLM repository on GitHub (resumable).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "_common"))
import mlab_prepare as mp  # noqa: E402

URL = "https://github.com/babylm/babylm.github.io/raw/main/babylm_data.zip"
SOURCES = ["aochildes", "bnc_spoken", "cbt", "children_stories", "gutenberg",
           "open_subtitles", "qed", "simple_wikipedia", "switchboard", "wikipedia"]
VISIBLE = {"babylm_10M": "train", "babylm_dev": "dev"}
HIDDEN = {"babylm_test": "test"}


def copy_split(source, folder, suffix, dest_root):
    for name in SOURCES:
        member = source.find(f"{folder}/{name}.{suffix}")
        source.extract(member, dest_root / folder / f"{name}.{suffix}", link=False)


def main(argv=None):
    paths = mp.TaskPaths(__file__)
    args = mp.parse_args(__doc__, argv)

    mp.step("finding the BabyLM data")
    archive = mp.fetch(URL, ["babylm_data.zip", "babylm_data"], args, paths,
                       "the BabyLM 2023 data (babylm_data.zip, about 700 MB)")
    source = mp.Source(archive)

    mp.step("copying the 10M training corpus and the dev split to env/babylm_data/")
    visible = mp.reset_dir(paths.env / "babylm_data")
    for folder, suffix in VISIBLE.items():
        copy_split(source, folder, suffix, visible)

    mp.step("copying the test split to script/babylm_data/ (hidden)")
    hidden = mp.reset_dir(paths.script / "babylm_data")
    for folder, suffix in HIDDEN.items():
        copy_split(source, folder, suffix, hidden)


if __name__ == "__main__":
    mp.run_main(main)
