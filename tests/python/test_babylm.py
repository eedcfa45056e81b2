"""babylm: the test split is hidden in script/, the loader needs no cwd, and
the eval's blocking and perplexity (computed without torch)."""

import math
import os

import pytest

from conftest import load_eval, load_module, make_zip, prepare_inproc

SOURCES = ["aochildes", "bnc_spoken", "cbt", "children_stories", "gutenberg",
           "open_subtitles", "qed", "simple_wikipedia", "switchboard", "wikipedia"]


def fake_zip(root):
    files = {}
    for folder, suffix in [("babylm_10M", "train"), ("babylm_100M", "train"), ("babylm_dev", "dev"),
                           ("babylm_test", "test")]:
        for s in SOURCES:
            files[f"babylm_data/{folder}/{s}.{suffix}"] = f"{folder} {s} one\n\n{s} two\n"
    files["__MACOSX/babylm_data/._x"] = "junk"
    return make_zip(root / "babylm_data.zip", files)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    from conftest import copy_task
    root = tmp_path_factory.mktemp("bl")
    fake_zip(root / "data")
    task = copy_task("babylm", root)
    prepare_inproc(task, "--data-dir", str(root / "data"))
    return task


def test_prepare_hides_the_test_split(prepared):
    env = prepared / "env/babylm_data"
    assert sorted(p.name for p in env.iterdir()) == ["babylm_10M", "babylm_dev"]
    assert len(list((env / "babylm_10M").glob("*.train"))) == 10
    hidden = prepared / "script/babylm_data/babylm_test"
    assert (hidden / "qed.test").read_text().startswith("babylm_test qed one")
    assert not list(prepared.joinpath("env").rglob("*.test"))


def test_loader_finds_its_data_from_any_cwd(prepared, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # the original's "./babylm_data" would break here
    loader = load_module(prepared / "env/babyLM_for_hf.py", "babylm_loader")
    files = loader.split_files("babylm_10M", "train")
    assert all(os.path.isfile(f) for f in files)
    lines = loader.read_lines(files[:1])
    assert lines == ["babylm_10M aochildes one\n", "", "aochildes two\n"]


def test_eval_reads_the_hidden_test_lines(prepared):
    lines = load_eval(prepared).read_test_lines()
    assert len(lines) == 30 and lines[1] == "" and lines[0].startswith("babylm_test aochildes")


def test_blocks_drop_each_batch_remainder():
    ev = load_eval_from_repo()
    tokens = [[1, 2, 3], [4, 5], [6, 7, 8, 9]]
    # Batches of 2 lines: [1..5] -> one block [1,2,3,4], 5 dropped; [6..9] -> one block.
    assert ev.group_into_blocks(tokens, 4, lines_per_batch=2) == [[1, 2, 3, 4], [6, 7, 8, 9]]
    assert ev.group_into_blocks(tokens, 4, lines_per_batch=10) == [[1, 2, 3, 4], [5, 6, 7, 8]]


def test_perplexity_is_exp_of_the_mean_block_loss():
    ev = load_eval_from_repo()
    assert ev.perplexity([1.0, 3.0]) == pytest.approx(math.exp(2.0))
    assert ev.perplexity([1e6]) == math.inf
    with pytest.raises(ValueError, match="no complete block"):
        ev.perplexity([])


def test_missing_model_or_tokenizer_is_named(prepared, tmp_path):
    ev = load_eval(prepared)
    with pytest.raises(ValueError, match="no model"):
        ev.get_score(tmp_path)
    (tmp_path / "output").mkdir()
    (tmp_path / "output/config.json").write_text("{}")
    with pytest.raises(ValueError, match="no tokenizer"):
        ev.get_score(tmp_path)


def load_eval_from_repo():
    from conftest import BENCHMARKS
    return load_module(BENCHMARKS / "babylm/script/eval.py", "babylm_eval_repo")
