"""fathomnet: the split with fixed out-of-sample truth from a fake Kaggle
archive and image folder, the metric by hand, and env/metric.py agreeing
with the eval."""

import json

import pandas as pd
import pytest

from conftest import load_eval, load_module, make_dir, make_zip, prepare_inproc

TASK = "fathomnet"
SLUG = "fathomnet-out-of-sample-detection"


def fake_categories(i):
    """Common categories 1-4 everywhere; rare ones 10.. in a few images."""
    cats = [1 + i % 4]
    if i % 10 == 3:
        cats.append(10 + i // 10)  # categories 10..19, one image each
    if i % 25 == 7:
        cats.append(30 + i % 2)
    return cats


def fake_competition(root, with_images=True, skip_image=None):
    ids = [f"img{i:03d}" for i in range(100)]
    train_csv = pd.DataFrame({"id": ids, "categories": [str([float(c) for c in fake_categories(i)])
                                                         for i in range(100)]})
    images = [{"id": i + 1, "file_name": f"{ids[i]}.png", "width": 4, "height": 4,
               "coco_url": f"https://example.invalid/{ids[i]}.png"} for i in range(100)]
    annotations = []
    for i in range(100):
        for c in fake_categories(i):
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": c,
                                "bbox": [0, 0, 1, 1]})
    detection = {"info": {}, "images": images, "annotations": annotations,
                 "categories": [{"id": c, "name": f"c{c}"} for c in range(1, 291)]}
    make_zip(root / f"{SLUG}.zip", {
        "multilabel_classification/train.csv": train_csv.to_csv(index=False),
        "object_detection/train.json": json.dumps(detection),
        "object_detection/eval.json": json.dumps({"images": []}),
        "category_key.csv": "id,name,supercat\n1,a,b\n",
        "download_images.py": "", "requirements.txt": "",
    })
    if with_images:
        make_dir(root / "fathomnet/images", {f"{i}.png": f"png {i}" for i in ids if i != skip_image})
    return root


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    from conftest import copy_task
    root = tmp_path_factory.mktemp("fn")
    fake_competition(root / "data")
    task = copy_task(TASK, root)
    prepare_inproc(task, "--data-dir", str(root / "data"))
    return task


def test_split_holds_out_images_and_fixes_osd_by_unseen_categories(prepared):
    env = prepared / "env"
    train = pd.read_csv(env / "multilabel_classification/train.csv")
    answer = pd.read_csv(prepared / "script/answer.csv", dtype={"categories": str})
    assert set(train.id).isdisjoint(answer.id)
    assert len(train) + len(answer) == 100
    seen = {c for i in train.id for c in fake_categories(int(i[3:]))}
    for row in answer.itertuples():
        cats = fake_categories(int(row.id[3:]))
        assert row.categories == " ".join(str(c) for c in sorted(set(cats)))
        assert row.osd == int(any(c not in seen for c in cats)), row.id
    assert 0 < answer.osd.sum() < len(answer)
    # The 2% in-sample part plus about as many held-out images again.
    assert 3 <= len(answer) <= 5


def test_env_files_follow_the_split(prepared):
    env = prepared / "env"
    train = set(pd.read_csv(env / "multilabel_classification/train.csv").id)
    test = set(pd.read_csv(prepared / "script/answer.csv").id)
    tj = json.loads((env / "object_detection/train.json").read_text())
    ej = json.loads((env / "object_detection/eval.json").read_text())
    assert {im["file_name"][:-4] for im in tj["images"]} == train
    kept = {im["id"] for im in tj["images"]}
    assert tj["annotations"] and all(a["image_id"] in kept for a in tj["annotations"])
    assert {im["file_name"][:-4] for im in ej["images"]} == test and "annotations" not in ej
    assert {p.stem for p in (env / "images").iterdir()} == train | test
    assert (env / "category_key.csv").exists()


def test_missing_image_is_named(task_copy, tmp_path):
    import mlab_prepare
    task = task_copy(TASK)
    fake_competition(tmp_path / "data", skip_image="img050")
    with pytest.raises(mlab_prepare.PrepareError, match="img050"):
        prepare_inproc(task, "--data-dir", str(tmp_path / "data"))


def test_without_images_offline_says_where_to_put_them(task_copy, tmp_path):
    import mlab_prepare
    task = task_copy(TASK)
    fake_competition(tmp_path / "data", with_images=False)
    with pytest.raises(mlab_prepare.PrepareError, match="images/<id>.png"):
        prepare_inproc(task, "--data-dir", str(tmp_path / "data"))


HAND_ANSWER = "id,categories,osd\na,1 2,0\nb,3,1\nc,4,0\n"


@pytest.fixture
def hand_task(task_copy):
    task = task_copy(TASK)
    (task / "script/answer.csv").write_text(HAND_ANSWER)
    return task


def test_score_by_hand(hand_task, tmp_path):
    # AP(a) = (1/1 + 2/3)/2 = 5/6, AP(b) = 1, AP(c) = 0 -> MAP = 11/18.
    # b's osd beats both in-sample images -> AUC 1 -> sAUC 1.
    (tmp_path / "submission.csv").write_text('id,categories,osd\nc,,0.2\nb,[3.0],0.9\na,2 5 1,0.2\n')
    assert load_eval(hand_task).get_score(tmp_path) == pytest.approx((1 + 11 / 18) / 2)
    # Constant osd is chance: sAUC 0.
    (tmp_path / "submission.csv").write_text('id,categories,osd\nc,,1\nb,3,1\na,2 5 1,1\n')
    assert load_eval(hand_task).get_score(tmp_path) == pytest.approx((0 + 11 / 18) / 2)


def test_env_metric_agrees_with_the_eval(hand_task, tmp_path):
    sub = "id,categories,osd\nc,4 1,0.5\nb,7,0.3\na,1,0.1\n"
    (tmp_path / "submission.csv").write_text(sub)
    metric = load_module(hand_task / "env/metric.py", "fathomnet_env_metric")
    solution = pd.read_csv(hand_task / "script/answer.csv", dtype=str)
    solution["osd"] = solution["osd"].astype(int)
    submission = pd.read_csv(tmp_path / "submission.csv", dtype={"id": str, "categories": str})
    assert metric.score(solution, submission, "id") == pytest.approx(load_eval(hand_task).get_score(tmp_path))


@pytest.mark.parametrize("content, message", [
    ("id,categories\na,1\nb,3\nc,4\n", "lacks column"),
    ("id,categories,osd\na,1 x,0\nb,3,1\nc,4,0\n", "category ids"),
    ("id,categories,osd\na,1,0\nb,3,1\n", "misses 1"),
    ("id,categories,osd\na,1,0\nb,3,nope\nc,4,0\n", "finite"),
])
def test_eval_rejects_malformed_submissions(hand_task, tmp_path, content, message):
    (tmp_path / "submission.csv").write_text(content)
    with pytest.raises(ValueError, match=message):
        load_eval(hand_task).get_score(tmp_path)
