"""imdb: prepare from a fake aclImdb archive (shuffled, labels hidden) and
accuracy by idx."""

import pandas as pd
import pytest

from conftest import load_eval, make_dir, make_tar, prepare_inproc


def review_files():
    files = {}
    for split in ("train", "test"):
        for label in ("neg", "pos"):
            for n in range(5):
                files[f"aclImdb/{split}/{label}/{n}_{7 if label == 'pos' else 2}.txt"] = \
                    f'{split} {label} review {n}, "quoted", with\nnewline'
    files["aclImdb/train/unsup/0_0.txt"] = "no label here"
    files["aclImdb/README"] = "readme"
    return files


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    from conftest import copy_task
    root = tmp_path_factory.mktemp("imdb")
    make_tar(root / "data/aclImdb_v1.tar.gz", review_files())
    task = copy_task("imdb", root)
    prepare_inproc(task, "--data-dir", str(root / "data"))
    return task


def test_prepare_writes_all_reviews_and_hides_test_labels(prepared):
    train = pd.read_csv(prepared / "env/data/train.csv")
    test = pd.read_csv(prepared / "env/data/test.csv")
    answer = pd.read_csv(prepared / "script/answer.csv")
    assert len(train) == 10 and sorted(train.label) == [0] * 5 + [1] * 5
    assert list(test.columns) == ["idx", "text"] and len(test) == 10
    assert test.text.str.contains("\nnewline").all()
    # Each test review's label matches the folder its text came from.
    labels = dict(zip(answer.idx, answer.label))
    for idx, text in zip(test.idx, test.text):
        assert labels[idx] == (1 if text.startswith("test pos") else 0)
    assert pd.read_csv(prepared / "env/data/unsupervised.csv").text.tolist() == ["no label here"]


def test_prepare_shuffles_so_position_does_not_give_the_label(prepared):
    answer = pd.read_csv(prepared / "script/answer.csv")
    assert answer.label.tolist() != sorted(answer.label.tolist())


def test_prepare_reads_an_extracted_folder_too(task_copy, tmp_path):
    task = task_copy("imdb")
    make_dir(tmp_path / "cache/aclImdb", {k[len("aclImdb/"):]: v for k, v in review_files().items()})
    prepare_inproc(task, "--data-dir", str(tmp_path / "cache"))
    assert len(pd.read_csv(task / "env/data/test.csv")) == 10


def test_eval_is_argmax_accuracy_by_idx(prepared, tmp_path):
    answer = pd.read_csv(prepared / "script/answer.csv")
    # Correct for the first 7 ids, wrong for the other 3; rows reversed.
    rows = []
    for i, (idx, label) in enumerate(zip(answer.idx, answer.label)):
        right = label if i < 7 else 1 - label
        rows.append((idx, 0.9 if right == 0 else 0.1, 0.1 if right == 0 else 0.9))
    sub = pd.DataFrame(rows[::-1], columns=["idx", "0", "1"])
    sub.to_csv(tmp_path / "submission.csv", index=False)
    assert load_eval(prepared).get_score(tmp_path) == pytest.approx(0.7)
    sub.iloc[:-1].to_csv(tmp_path / "submission.csv", index=False)
    with pytest.raises(ValueError, match="misses 1"):
        load_eval(prepared).get_score(tmp_path)
    sub[["idx", "0"]].to_csv(tmp_path / "submission.csv", index=False)
    with pytest.raises(ValueError, match="class columns"):
        load_eval(prepared).get_score(tmp_path)
