"""identify-contrails: validation records become the hidden test set (masks
removed from env/), answers agree with env/encode.py, and the eval is the
global Dice (not the mean of per-image scores)."""

import io

import numpy as np
import pandas as pd
import pytest

from conftest import load_eval, load_module, make_dir, prepare_inproc

TASK = "identify-contrails"
SLUG = "google-research-identify-contrails-reduce-global-warming"


def npy(array):
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def mask_with(pixels):
    """A (256, 256, 1) int32 mask with 1 at the given (row, col) pixels."""
    m = np.zeros((256, 256, 1), dtype=np.int32)
    for r, c in pixels:
        m[r, c, 0] = 1
    return m


MASKS = {"111": mask_with([(0, 0), (1, 0), (5, 3)]), "222": mask_with([]),
         "333": mask_with([(r, 200) for r in range(10, 20)])}


def fake_competition(root):
    files = {"train_metadata.json": "{}", "validation_metadata.json": '{"v": 1}',
             "sample_submission.csv": "record_id,encoded_pixels\n9,-\n"}
    band = npy(np.ones((2, 2, 8), dtype=np.float16))
    for record in ("10", "11"):
        for b in ("band_11", "band_14", "human_pixel_masks", "human_individual_masks"):
            files[f"train/{record}/{b}.npy"] = band
    for record, mask in MASKS.items():
        files[f"validation/{record}/band_11.npy"] = band
        files[f"validation/{record}/human_pixel_masks.npy"] = npy(mask)
        files[f"validation/{record}/human_individual_masks.npy"] = band
    files["test/999/band_11.npy"] = band
    return make_dir(root / SLUG, files)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    from conftest import copy_task
    root = tmp_path_factory.mktemp("ic")
    fake_competition(root / "data")
    task = copy_task(TASK, root)
    prepare_inproc(task, "--data-dir", str(root / "data"))
    return task


def test_validation_becomes_the_test_set_without_masks(prepared):
    env = prepared / "env"
    assert sorted(p.name for p in (env / "train").iterdir()) == ["10", "11"]
    assert (env / "train/10/human_pixel_masks.npy").exists()
    assert sorted(p.name for p in (env / "test").iterdir()) == ["111", "222", "333"]
    assert not list((env / "test").rglob("human_*")), "test masks must not be under env/"
    assert (env / "test/111/band_11.npy").exists()
    assert (env / "validation_metadata.json").read_text() == '{"v": 1}'
    sample = pd.read_csv(env / "sample_submission.csv", dtype=str)
    assert sample.record_id.tolist() == ["111", "222", "333"] and (sample.encoded_pixels == "-").all()


def test_answers_match_the_agents_encoder(prepared):
    encode = load_module(prepared / "env/encode.py", "contrails_encode")
    answer = pd.read_csv(prepared / "script/answer.csv", dtype=str, keep_default_na=False)
    got = dict(zip(answer.record_id, answer.encoded_pixels))
    assert got["111"] == "1 2 774 1"  # (0,0),(1,0) -> 1,2; (5,3) -> 3*256+5+1
    assert got["222"] == "-"
    for record, mask in MASKS.items():
        assert got[record] == encode.list_to_string(encode.rle_encode(mask[:, :, 0]))
        assert (encode.rle_decode(got[record]) == mask[:, :, 0]).all()


def test_global_dice_by_hand(prepared, tmp_path):
    # 111: truth 3 px, predict 2 of them + 1 other; 222: truth 0, predict 3 px;
    # 333: exact (10 px: 200*256+10+1 = 51211). Global: 2*(2+0+10) / ((3+3) + (3+0) + (10+10)) = 24/29.
    # (The mean of per-image Dice would be (2/3 + 0 + 1)/3: a different number.)
    (tmp_path / "submission.csv").write_text(
        "record_id,encoded_pixels\n333,51211 10\n222,100 3\n111,1 2 50 1\n")
    assert load_eval(prepared).get_score(tmp_path) == pytest.approx(24 / 29)


def test_empty_cells_mean_empty_masks(prepared, tmp_path):
    (tmp_path / "submission.csv").write_text("record_id,encoded_pixels\n111,\n222,-\n333,\n")
    assert load_eval(prepared).get_score(tmp_path) == pytest.approx(0.0)


@pytest.mark.parametrize("row, message", [
    ("111,1 2 774", "pairs"),
    ("111,65536 2", "outside"),
    ("111,1 5 3 2", "overlap"),
    ("111,a b", "integers"),
])
def test_eval_rejects_malformed_runs(prepared, tmp_path, row, message):
    (tmp_path / "submission.csv").write_text(f"record_id,encoded_pixels\n{row}\n222,-\n333,-\n")
    with pytest.raises(ValueError, match=message):
        load_eval(prepared).get_score(tmp_path)


def test_eval_requires_every_record(prepared, tmp_path):
    (tmp_path / "submission.csv").write_text("record_id,encoded_pixels\n111,-\n222,-\n")
    with pytest.raises(ValueError, match="misses 1"):
        load_eval(prepared).get_score(tmp_path)
