"""ogbn-arxiv: prepare from a fake OGB arxiv.zip (test labels hidden) and
accuracy in test_idx order or by node id."""

import gzip

import numpy as np
import pandas as pd
import pytest

from conftest import load_eval, make_zip, prepare_inproc


def gz(lines):
    return gzip.compress(("\n".join(lines) + "\n").encode())


def fake_archive(path):
    n = 8
    return make_zip(path / "arxiv.zip", {
        "arxiv/raw/node-feat.csv.gz": gz([",".join(str(i + j / 10) for j in range(4)) for i in range(n)]),
        "arxiv/raw/edge.csv.gz": gz(["0,1", "1,2", "2,3", "7,0"]),
        "arxiv/raw/node-label.csv.gz": gz([str(i % 5) for i in range(n)]),
        "arxiv/raw/node_year.csv.gz": gz([str(2000 + i) for i in range(n)]),
        "arxiv/split/time/train.csv.gz": gz(["0", "1", "2", "3"]),
        "arxiv/split/time/valid.csv.gz": gz(["4", "5"]),
        "arxiv/split/time/test.csv.gz": gz(["7", "6"]),
        "arxiv/RELEASE_v1.txt": "v1",
    })


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    from conftest import copy_task
    root = tmp_path_factory.mktemp("arxiv")
    fake_archive(root / "data")
    task = copy_task("ogbn-arxiv", root)
    prepare_inproc(task, "--data-dir", str(root / "data"))
    return task


def test_prepare_writes_the_graph_with_test_labels_hidden(prepared):
    g = np.load(prepared / "env/networks/ogbn-arxiv.npz")
    assert g["x"].shape == (8, 4) and g["x"].dtype == np.float32 and g["x"][2, 1] == pytest.approx(2.1)
    assert g["edge_index"].tolist() == [[0, 1, 2, 7], [1, 2, 3, 0]]
    assert g["y"].tolist() == [0, 1, 2, 3, 4, 0, -1, -1]
    assert g["test_idx"].tolist() == [7, 6] and g["node_year"][7] == 2007
    answer = pd.read_csv(prepared / "script/answer.csv")
    assert answer.to_dict("list") == {"node_id": [7, 6], "label": [2, 1]}


def test_eval_scores_in_test_idx_order_or_by_node_id(prepared, tmp_path):
    ev = load_eval(prepared)
    (tmp_path / "submission.csv").write_text("0\n2\n0\n")  # node 7 right (2), node 6 wrong
    assert ev.get_score(tmp_path) == pytest.approx(0.5)
    (tmp_path / "submission.csv").write_text("node_id,label\n6,1\n7,2\n")
    assert ev.get_score(tmp_path) == pytest.approx(1.0)


@pytest.mark.parametrize("content, message", [
    ("0\n2\n", "2 rows|1 rows"),
    ("0\n2\n1\n5\n", "rows"),
    ("0\n2.5\n1\n", "integer"),
    ("a,b\n1,2\n3,4\n", "one column"),
])
def test_eval_rejects_malformed_submissions(prepared, tmp_path, content, message):
    (tmp_path / "submission.csv").write_text(content)
    with pytest.raises(ValueError, match=message):
        load_eval(prepared).get_score(tmp_path)
