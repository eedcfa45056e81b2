"""Prepares the ogbn-arxiv task from the OGB archive (arxiv.zip).

Writes env/networks/ogbn-arxiv.npz with x (node features, float32),
edge_index (2 x E, int64, as OGB ships it), y (int64 labels, -1 for the test
nodes), node_year and the OGB time split (train_idx, valid_idx, test_idx).
The test labels go to script/answer.csv (node_id, label) in test_idx order.

Data source, in order: --data-dir DIR (or $MLAB_DATA_CACHE) holding
arxiv.zip (the file OGB downloads), the extracted folder arxiv/, or an OGB
dataset folder ogbn_arxiv/ (as PygNodePropPredDataset leaves it, with raw/
and split/); else arxiv.zip is downloaded from the OGB site (about 81 MB,
resumable). OGB itself is not needed.
"""

import io
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "_common"))
import mlab_prepare as mp  # noqa: E402

URL = "http://snap.stanford.edu/ogb/data/nodeproppred/arxiv.zip"


def read_table(source, suffix, dtype):
    """An OGB .csv.gz (no header) as a 2-D numpy array."""
    import pandas as pd
    name = source.find(suffix)
    with source.open(name) as f:
        frame = pd.read_csv(io.BytesIO(f.read()), header=None, compression="gzip", dtype=dtype)
    return frame.to_numpy()


def main(argv=None):
    import numpy as np
    paths = mp.TaskPaths(__file__)
    args = mp.parse_args(__doc__, argv)
    mp.require_modules(paths.name, ["numpy", "pandas"])
    import pandas as pd

    mp.step("finding the ogbn-arxiv archive")
    archive = mp.fetch(URL, ["arxiv.zip", "arxiv", "ogbn_arxiv"], args, paths,
                       "the OGB ogbn-arxiv archive (arxiv.zip, 81 MB)")
    source = mp.Source(archive)

    mp.step("reading the graph, features, labels and the time split")
    x = read_table(source, "raw/node-feat.csv.gz", np.float32)
    edges = read_table(source, "raw/edge.csv.gz", np.int64).T.copy()
    y = read_table(source, "raw/node-label.csv.gz", np.int64).reshape(-1)
    year = read_table(source, "raw/node_year.csv.gz", np.int64).reshape(-1)
    split = {name: read_table(source, f"split/time/{name}.csv.gz", np.int64).reshape(-1)
             for name in ("train", "valid", "test")}
    n = len(x)
    if len(y) != n or len(year) != n or edges.max(initial=0) >= n:
        raise mp.PrepareError(f"{archive}: features, labels and edges disagree on the node count")
    mp.info(f"{n} nodes, {edges.shape[1]} edges, {len(split['test'])} test nodes")

    mp.step("writing env/networks/ (test labels hidden) and script/answer.csv")
    hidden = y.copy()
    hidden[split["test"]] = -1
    out = mp.reset_dir(paths.env / "networks")
    np.savez(out / "ogbn-arxiv.npz", x=x, edge_index=edges, y=hidden, node_year=year,
             train_idx=split["train"], valid_idx=split["valid"], test_idx=split["test"])
    answer = pd.DataFrame({"node_id": split["test"], "label": y[split["test"]]})
    mp.write_csv(answer, paths.answer)


if __name__ == "__main__":
    mp.run_main(main)
