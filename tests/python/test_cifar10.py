"""cifar10: prepare from a fake CIFAR-10 python archive (test labels hidden),
argmax accuracy by image id, and the offline error."""

import pickle

import numpy as np
import pandas as pd
import pytest

from conftest import load_eval, make_tar, prepare_inproc


def batch(n, first_label):
    data = np.arange(n * 3072, dtype=np.int64).reshape(n, 3072) % 251
    return pickle.dumps({b"data": data.astype(np.uint8), b"labels": [(first_label + i) % 10 for i in range(n)]})


def fake_archive(path):
    files = {f"cifar-10-batches-py/data_batch_{i}": batch(2, i) for i in range(1, 6)}
    files["cifar-10-batches-py/test_batch"] = batch(4, 7)
    files["cifar-10-batches-py/batches.meta"] = pickle.dumps(
        {b"label_names": [f"class{i}".encode() for i in range(10)]})
    return make_tar(path / "cifar-10-python.tar.gz", files)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    from conftest import copy_task
    root = tmp_path_factory.mktemp("c10")
    fake_archive(root / "data")
    task = copy_task("cifar10", root)
    prepare_inproc(task, "--data-dir", str(root / "data"))
    return task


def test_prepare_writes_arrays_and_hides_test_labels(prepared):
    train = np.load(prepared / "env/data/cifar10_train.npz")
    test = np.load(prepared / "env/data/cifar10_test.npz")
    assert train["images"].shape == (10, 32, 32, 3) and train["images"].dtype == np.uint8
    assert train["labels"].tolist() == [1, 2, 2, 3, 3, 4, 4, 5, 5, 6]
    assert sorted(test.files) == ["ids", "images"], "test labels must not be in env/"
    # CIFAR rows are channel-major: byte 1024 is the green value of pixel (0, 0).
    assert test["images"][0, 0, 0].tolist() == [0, 1024 % 251, 2048 % 251]
    answer = pd.read_csv(prepared / "script/answer.csv")
    assert answer.to_dict("list") == {"id": [0, 1, 2, 3], "label": [7, 8, 9, 0]}
    assert (prepared / "env/data/classes.txt").read_text().splitlines()[3] == "class3"


def test_eval_takes_argmax_and_matches_ids(prepared, tmp_path):
    probs = np.full((4, 10), 0.05)
    # ids 0..3 have labels 7, 8, 9, 0; rows written in the order 3, 2, 1, 0.
    for row, (img_id, guess) in enumerate([(3, 0), (2, 9), (1, 1), (0, 2)]):
        probs[row, guess] = 0.55
    pd.DataFrame(probs, columns=list(range(10)), index=[3, 2, 1, 0]).to_csv(tmp_path / "submission.csv")
    assert load_eval(prepared).get_score(tmp_path) == pytest.approx(2 / 4)


@pytest.mark.parametrize("frame, message", [
    (pd.DataFrame(np.ones((4, 9)), columns=list(range(9))), "class columns"),
    (pd.DataFrame(np.ones((3, 10)), columns=list(range(10))), "misses 1"),
    (pd.DataFrame(np.ones((5, 10)), columns=list(range(10))), "not in the test set"),
    (pd.DataFrame([["x"] * 10] * 4, columns=list(range(10))), "finite"),
])
def test_eval_rejects_malformed_submissions(prepared, tmp_path, frame, message):
    frame.to_csv(tmp_path / "submission.csv")
    with pytest.raises(ValueError, match=message):
        load_eval(prepared).get_score(tmp_path)


def test_offline_without_data_dir_says_what_to_download(task_copy):
    import mlab_prepare
    task = task_copy("cifar10")
    with pytest.raises(mlab_prepare.PrepareError) as err:
        prepare_inproc(task)
    text = str(err.value)
    assert "cifar-10-python.tar.gz" in text and "--data-dir" in text and "https://" in text
    assert not (task / "env/data").exists()
