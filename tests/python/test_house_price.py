"""house-price: the prepare split from a fake Kaggle zip, and MAE by Id."""

import pandas as pd
import pytest

from conftest import load_eval, make_dir, make_zip, prepare_inproc, prepare_ok, run_prepare

TRAIN = "\n".join(["Id,LotArea,SalePrice"] + [f"{i},{1000 + i},{100000 + 1000 * i}" for i in range(1, 11)]) + "\n"
FILES = {"train.csv": TRAIN, "test.csv": "Id,LotArea\n99,5\n",
         "data_description.txt": "LotArea: lot size in square feet\n"}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """One real run of prepare.py as mlab runs it (subprocess, cwd script/)."""
    from conftest import copy_task
    root = tmp_path_factory.mktemp("hp")
    data = root / "data"
    make_zip(data / "home-data-for-ml-course.zip", FILES)
    task = copy_task("house-price", root)
    prepare_ok(task, "--data-dir", str(data))
    return task


def test_prepare_splits_in_file_order_and_hides_prices(prepared):
    train = pd.read_csv(prepared / "env/train.csv")
    test = pd.read_csv(prepared / "env/test.csv")
    answer = pd.read_csv(prepared / "script/answer.csv")
    assert train.Id.tolist() == list(range(1, 9))
    assert test.Id.tolist() == [9, 10]
    assert "SalePrice" not in test.columns
    assert answer.to_dict("list") == {"Id": [9, 10], "SalePrice": [109000, 110000]}
    assert (prepared / "env/data_description.txt").read_text().startswith("LotArea")


def test_prepare_reads_an_extracted_folder_under_the_task_name(task_copy, tmp_path):
    task = task_copy("house-price")
    make_dir(tmp_path / "cache/house-price/home-data-for-ml-course", FILES)
    prepare_inproc(task, "--data-dir", str(tmp_path / "cache"))
    assert pd.read_csv(task / "script/answer.csv").Id.tolist() == [9, 10]


def test_prepare_without_data_or_consent_says_what_to_do(task_copy):
    task = task_copy("house-price")
    result = run_prepare(task)
    assert result.returncode == 1
    assert "--accept-rules" in result.stderr and "--data-dir" in result.stderr
    assert not (task / "script/answer.csv").exists()


def test_eval_is_mae_matched_by_id(prepared, tmp_path):
    ev = load_eval(prepared)
    (tmp_path / "submission.csv").write_text("Id,SalePrice\n10,110500\n9,108000\n")
    assert ev.get_score(tmp_path) == pytest.approx((500 + 1000) / 2)


@pytest.mark.parametrize("content, message", [
    ("Id,Price\n9,1\n10,2\n", "lacks column"),
    ("Id,SalePrice\n9,1\n", "misses 1"),
    ("Id,SalePrice\n9,1\n9,2\n10,3\n", "repeats"),
    ("Id,SalePrice\n9,1\n10,2\n11,3\n", "not in the test set"),
    ("Id,SalePrice\n9,abc\n10,2\n", "finite number"),
    ("", "not a readable CSV"),
])
def test_eval_rejects_malformed_submissions(prepared, tmp_path, content, message):
    (tmp_path / "submission.csv").write_text(content)
    with pytest.raises(ValueError, match=message):
        load_eval(prepared).get_score(tmp_path)


def test_eval_without_submission_names_the_file(prepared, tmp_path):
    with pytest.raises(ValueError, match="submission.csv not found"):
        load_eval(prepared).get_score(tmp_path)
