"""Shared helpers for the tests of the paper tasks (benchmarks/<task>/).

Tests never touch the repository's task folders: each prepare runs in a copy
under pytest's tmp_path, together with benchmarks/_common. Everything is
offline; archives are tiny fakes in the layout each task's README documents.
"""

import importlib.util
import io
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BENCHMARKS = REPO / "benchmarks"
sys.path.insert(0, str(BENCHMARKS / "_common"))

# The twelve paper tasks this suite covers, with the direction of their metric.
PAPER_TASKS = {
    "cifar10": "higher",
    "imdb": "higher",
    "ogbn-arxiv": "higher",
    "house-price": "lower",
    "spaceship-titanic": "higher",
    "amp-parkinsons-disease-progression-prediction": "lower",
    "fathomnet": "higher",
    "feedback": "lower",
    "identify-contrails": "higher",
    "CLRS": "higher",
    "babylm": "lower",
    "llama-inference": "lower",
}


def tracked_files(rel: str) -> list:
    """The files git tracks under `rel` (relative to the repository): what a
    fresh clone has, without the data and answers `mlab prepare` writes into
    a checkout (a user who followed the README's quick start has them)."""
    out = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", "--", rel],
                         capture_output=True, check=False)
    assert out.returncode == 0, (
        f"the tests copy tasks as git tracks them; `git ls-files` failed in {REPO} "
        f"(run them from a git clone): {out.stderr.decode(errors='replace')}")
    return [p for p in out.stdout.decode().split("\0") if p]


def copy_task(name: str, dest_root: Path) -> Path:
    """A private, unprepared copy of benchmarks/<name> (and _common) under
    dest_root: the tracked files only, whatever the checkout has prepared."""
    bench = dest_root / "benchmarks"
    bench.mkdir(parents=True, exist_ok=True)
    wanted = [f"benchmarks/{name}"]
    if not (bench / "_common").exists():
        wanted.insert(0, "benchmarks/_common")
    for rel in wanted:
        for f in tracked_files(rel):
            to = dest_root / f
            to.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / f, to)
    return bench / name


@pytest.fixture
def task_copy(tmp_path):
    return lambda name: copy_task(name, tmp_path)


def run_prepare(task_dir: Path, *args: str, env_extra=None, timeout=120):
    """Runs script/prepare.py as mlab does (cwd script/), offline-safe env."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("MLAB_DATA_CACHE", "MLAB_ACCEPT_RULES", "KAGGLE_USERNAME", "KAGGLE_KEY")}
    # No proxy and no route: any download attempt fails fast instead of hanging.
    env.update({"http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
                "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
                "no_proxy": "", "NO_PROXY": "", "PYTHONDONTWRITEBYTECODE": "1",
                "HOME": str(task_dir.parent.parent / "home")})
    if env_extra:
        env.update(env_extra)
    return subprocess.run([sys.executable, "prepare.py", *args], cwd=task_dir / "script",
                          capture_output=True, text=True, timeout=timeout, env=env)


def prepare_ok(task_dir: Path, *args: str, **kw):
    result = run_prepare(task_dir, *args, **kw)
    assert result.returncode == 0, f"prepare failed:\nSTDOUT\n{result.stdout}\nSTDERR\n{result.stderr}"
    assert "==> " in result.stdout, "prepare.py must print ==> step headers"
    return result


def prepare_inproc(task_dir: Path, *args: str):
    """Runs prepare.py's main() in this process (no pandas start-up cost per
    run); raises the script's PrepareError on failure."""
    module = load_module(task_dir / "script" / "prepare.py",
                         f"prepare_{task_dir.name.replace('-', '_')}_{id(task_dir)}_{len(args)}")
    module.main(list(args))
    return module


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """No test may reach the network: urlopen fails like a machine without
    internet (tests of the downloader itself use a loopback server and
    undo this), and no data cache or consent leaks in from the environment."""
    import urllib.error
    import urllib.request

    real = urllib.request.urlopen

    def fake(request, *a, **kw):
        url = request.full_url if hasattr(request, "full_url") else str(request)
        if url.startswith("http://127.0.0.1"):
            return real(request, *a, **kw)
        raise urllib.error.URLError("offline (tests)")

    monkeypatch.setattr(urllib.request, "urlopen", fake)
    for var in ("MLAB_DATA_CACHE", "MLAB_ACCEPT_RULES", "KAGGLE_USERNAME", "KAGGLE_KEY"):
        monkeypatch.delenv(var, raising=False)


def load_module(path: Path, name: str = None):
    """Imports a file as a fresh module (eval.py files share one name)."""
    name = name or f"mod_{abs(hash(str(path)))}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def load_eval(task_dir: Path):
    return load_module(task_dir / "script" / "eval.py", f"eval_{task_dir.name.replace('-', '_')}_{id(task_dir)}")


def _bytes(data):
    return data.encode() if isinstance(data, str) else data


def make_zip(path: Path, files: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as z:
        for name, data in files.items():
            z.writestr(name, _bytes(data))
    return path


def make_tar(path: Path, files: dict, mode="w:gz") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, mode) as t:
        for name, data in files.items():
            data = _bytes(data)
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return path


def make_dir(root: Path, files: dict) -> Path:
    for name, data in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(_bytes(data))
    return root
