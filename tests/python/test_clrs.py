"""CLRS: the library copy with local imports (so workspace edits take
effect), the data split with a hidden test set, and the eval scoring the
snapshot's own code in a fresh process (run with stand-in modules, since
jax and the CLRS stack are not installed in CI)."""

import importlib
import subprocess
import sys

import pytest

from conftest import BENCHMARKS, load_eval, load_module, make_dir, make_tar, prepare_inproc

PREPARE = BENCHMARKS / "CLRS/script/prepare.py"

FAKE_LIBRARY = {
    "clrs/__init__.py": "from clrs._src import processors\n",
    "clrs/_src/__init__.py": "",
    "clrs/_src/processors.py": "import os\nWHERE = os.path.abspath(__file__)\n",
    "clrs/_src/specs.py": "X = 1\n",
    "clrs/_src/baselines.py": (
        "import functools\n"
        "from clrs._src import processors\n"
        "from clrs._src import (specs,\n    samplers as smp)\n"
        "from clrs._src.algorithms import graphs\n"
        "try:\n    from clrs._src import not_copied\nexcept ImportError:\n    not_copied = None\n"
        "LINE = 9\n"),
    "clrs/_src/samplers.py": "from clrs._src import algorithms\n",
    "clrs/_src/algorithms/__init__.py": "from clrs._src.algorithms.graphs import floyd_warshall\n",
    "clrs/_src/algorithms/graphs.py": "from clrs._src import specs\ndef floyd_warshall():\n    return specs.X\n",
}


def test_rewrite_imports_points_at_local_modules_and_keeps_lines():
    prep = load_module(PREPARE, "clrs_prepare_unit")
    local = {"processors", "specs", "samplers", "algorithms", "baselines"}
    text = FAKE_LIBRARY["clrs/_src/baselines.py"]
    out = prep.rewrite_imports(text, local)
    assert "import processors\n" in out
    assert "import specs; import samplers as smp\n" in out
    assert "from algorithms import graphs\n" in out
    assert "    from clrs._src import not_copied\n" in out  # not in env/: left alone
    assert out.count("\n") == text.count("\n")
    assert out.splitlines()[9] == "LINE = 9"


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    from conftest import copy_task
    root = tmp_path_factory.mktemp("clrs")
    site = make_dir(root / "site", FAKE_LIBRARY)
    data = {}
    for split in ("train", "val", "test"):
        data[f"clrs_dataset/floyd_warshall_{split}/1.0.0/data.tfrecord"] = f"fw {split}"
        data[f"clrs_dataset/bfs_{split}/1.0.0/data.tfrecord"] = f"bfs {split}"
    make_tar(root / "data/CLRS30_v1.0.0.tar.gz", data)
    task = copy_task("CLRS", root)
    sys.path.insert(0, str(site))
    importlib.invalidate_caches()
    try:
        prepare_inproc(task, "--data-dir", str(root / "data"))
    finally:
        sys.path.remove(str(site))
        sys.modules.pop("clrs", None)
    return task, site


def test_library_is_copied_and_imports_the_workspace_copy(prepared):
    task, site = prepared
    env = task / "env"
    for name in ("baselines.py", "processors.py", "samplers.py", "algorithms/graphs.py", "LICENSE.clrs"):
        assert (env / name).is_file(), name
    assert (env / "train.py").read_text().startswith('"""Trains the CLRS baseline')
    # Even with the library installed (on PYTHONPATH), baselines uses env/processors.py.
    run = subprocess.run([sys.executable, "-c",
                          "import baselines; print(baselines.processors.WHERE); print(baselines.graphs.floyd_warshall())"],
                         cwd=env, capture_output=True, text=True, env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stderr
    where, value = run.stdout.split()
    assert where == str(env / "processors.py") and value == "1"


def test_data_split_hides_the_test_set(prepared):
    task, _ = prepared
    visible = task / "env/CLRS30/CLRS30_v1.0.0/clrs_dataset"
    hidden = task / "script/CLRS30/CLRS30_v1.0.0/clrs_dataset"
    assert sorted(p.name for p in visible.iterdir()) == ["floyd_warshall_train", "floyd_warshall_val"]
    assert sorted(p.name for p in hidden.iterdir()) == ["floyd_warshall_test"]
    assert (hidden / "floyd_warshall_test/1.0.0/data.tfrecord").read_text() == "fw test"


def test_prepare_without_the_library_names_the_package(task_copy, monkeypatch):
    import mlab_prepare
    task = task_copy("CLRS")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(mlab_prepare.PrepareError, match="No module named 'clrs'.*requirements"):
        prepare_inproc(task)


# Stand-ins for the snapshot's library and for jax: just enough for the
# worker's calls, recording that the snapshot's own code ran.
SNAPSHOT = {
    "jax.py": (
        "class random:\n"
        "    PRNGKey = staticmethod(lambda seed: seed)\n"
        "    split = staticmethod(lambda key: (key, key))\n"
        "class _D:\n"
        "    def __init__(self, data):\n"
        "        self.data = data\n"
        "def _tree_map(f, *xs):\n"
        "    if isinstance(xs[0], list):\n"
        "        return [_D(f(*[x.data for x in z])) for z in zip(*xs)]\n"
        "    return f(*xs)\n"
        "class tree_util:\n"
        "    tree_map = staticmethod(_tree_map)\n"),
    "processors.py": "def get_processor_factory(kind, use_ln, nb_triplet_fts, nb_heads):\n"
                     "    return ('snapshot-factory', kind, use_ln, nb_triplet_fts, nb_heads)\n",
    "samplers.py": "def process_permutations(spec, sampler, enforce):\n    return spec, sampler\n",
    "dataset.py": (
        "import numpy as np\n"
        "class FB:\n"
        "    def __init__(self, i):\n"
        "        self.features = np.arange(i * 32, i * 32 + 32)\n"
        "        self.outputs = [type('D', (), {'data': self.features})()]\n"
        "class DS:\n"
        "    def as_numpy_iterator(self):\n"
        "        i = 0\n"
        "        while True:\n"
        "            yield FB(i)\n"
        "            i += 1\n"
        "def create_dataset(folder, algorithm, split, batch_size):\n"
        "    assert split == 'test' and algorithm == 'floyd_warshall' and batch_size == 32\n"
        "    return DS(), 64, 'spec'\n"),
    "baselines.py": (
        "import os\n"
        "class BaselineModel:\n"
        "    def __init__(self, spec, dummy_trajectory, processor_factory, checkpoint_path, **kw):\n"
        "        assert processor_factory[0] == 'snapshot-factory', processor_factory\n"
        "        self.path = checkpoint_path\n"
        "    def init(self, features, seed):\n"
        "        self.ready = True\n"
        "    def restore_model(self, name, only_load_processor=False):\n"
        "        assert self.ready and os.path.exists(os.path.join(self.path, name))\n"
        "    def predict(self, key, features, algorithm_index=0):\n"
        "        return (features % 4 != 0) * features - (features % 4 == 0), None\n"),
    "evaluation.py": (
        "import numpy as np\n"
        "def evaluate(outputs, preds):\n"
        "    truth = outputs[0].data\n"
        "    return {'score': float(np.mean(truth == preds))}\n"),
}


def snapshot_with(tmp_path, **overrides):
    files = dict(SNAPSHOT, **overrides)
    files["checkpoints/best.pkl"] = b"x"
    import pickle
    files["checkpoints/model_params.pkl"] = pickle.dumps(
        {"processor_factory": ("triplet_gmpnn", True, 8, 1), "hidden_dim": 128, "checkpoint_path": "./checkpoints"})
    files["checkpoints/spec_list.pkl"] = pickle.dumps(["spec"])
    return make_dir(tmp_path / "snap", files)


@pytest.fixture
def eval_with_data(task_copy):
    task = task_copy("CLRS")
    (task / "script/CLRS30/CLRS30_v1.0.0").mkdir(parents=True)
    return load_eval(task)


def test_eval_scores_with_the_snapshots_own_code(eval_with_data, tmp_path):
    # 64 test samples; the stand-in model gets wrong every value divisible by 4.
    assert eval_with_data.get_score(snapshot_with(tmp_path)) == pytest.approx(0.75)


def test_eval_surfaces_errors_of_the_snapshots_code(eval_with_data, tmp_path):
    snap = snapshot_with(tmp_path, **{"baselines.py": "raise ImportError('edited baselines.py was loaded')\n"})
    with pytest.raises(ValueError, match="edited baselines.py was loaded"):
        eval_with_data.get_score(snap)


def test_eval_names_missing_checkpoints(eval_with_data, tmp_path):
    snap = snapshot_with(tmp_path)
    (snap / "checkpoints/best.pkl").unlink()
    with pytest.raises(ValueError, match="checkpoints/best.pkl"):
        eval_with_data.get_score(snap)
