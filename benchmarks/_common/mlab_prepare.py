"""Helpers shared by the paper tasks' prepare.py scripts.

What it is for: the parts every prepare.py needs and that must behave the same
everywhere: the `--data-dir` / `--accept-rules` command line, `==> ` step
headers, finding an archive the user already downloaded, resumable downloads
with progress, Kaggle downloads that need consent given by flag, and reading a
dataset the same way whether it is a zip, a tar or an extracted folder.

What it is not for: anything task specific (splits, answers); that lives in
each task's own prepare.py. It needs only the Python standard library, so a
prepare.py can import it before checking for pandas or the task's framework.

The hidden answers go to `TaskPaths.answer` (script/answer.csv, the name
mlab_eval.ANSWER_FILE that every eval.py reads).

A prepare.py imports it with:

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "_common"))
    import mlab_prepare as mp
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional

from mlab_eval import ANSWER_FILE

CHUNK = 1 << 20


class PrepareError(Exception):
    """A problem the user can fix; shown as one message, without a traceback."""


class OfflineError(PrepareError):
    """The network could not be reached (or refused the download)."""


def step(message: str) -> None:
    """Prints a step header; mlab names the last one when prepare fails."""
    print(f"==> {message}", flush=True)


def info(message: str) -> None:
    print(f"    {message}", flush=True)


def run_main(main: Callable[[], None]) -> None:
    """Runs `main`, turning a PrepareError into a clear message and exit 1."""
    try:
        main()
    except PrepareError as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted: run prepare again to resume", file=sys.stderr, flush=True)
        sys.exit(130)


class TaskPaths:
    """The folders of the task a prepare.py belongs to."""

    def __init__(self, prepare_file: str):
        self.script = Path(prepare_file).resolve().parent
        self.task = self.script.parent
        self.env = self.task / "env"
        self.name = self.task.name
        # The hidden answers that eval.py reads.
        self.answer = self.script / ANSWER_FILE


def parse_args(description: str, argv: Optional[list] = None,
               extra: Optional[Callable[[argparse.ArgumentParser], None]] = None) -> argparse.Namespace:
    """The command line every prepare.py accepts.

    `--data-dir` defaults to $MLAB_DATA_CACHE; `--accept-rules` is also taken
    from MLAB_ACCEPT_RULES=1 (which `mlab prepare --accept-rules` sets).
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--data-dir", type=Path, default=None, metavar="DIR",
        help="folder holding archives downloaded elsewhere (default: $MLAB_DATA_CACHE); "
             "downloads are also kept there when it is writable")
    parser.add_argument(
        "--accept-rules", action="store_true",
        help="you have read and accept the rules of the Kaggle competition this task downloads")
    if extra is not None:
        extra(parser)
    args = parser.parse_args(argv)
    if args.data_dir is None and os.environ.get("MLAB_DATA_CACHE"):
        args.data_dir = Path(os.environ["MLAB_DATA_CACHE"])
    if not args.accept_rules and os.environ.get("MLAB_ACCEPT_RULES") == "1":
        args.accept_rules = True
    if args.data_dir is not None:
        args.data_dir = args.data_dir.expanduser().resolve()
        if not args.data_dir.is_dir():
            raise PrepareError(f"--data-dir {args.data_dir} is not a folder")
    return args


def find_in_data_dir(data_dir: Optional[Path], task: str, names: Iterable[str]) -> Optional[Path]:
    """The first of `names` found in DIR/<task>/ or DIR/ (in that order)."""
    if data_dir is None:
        return None
    names = list(names)
    for base in (data_dir / task, data_dir):
        for name in names:
            candidate = base / name
            if candidate.exists():
                return candidate
    return None


def download_dir(data_dir: Optional[Path], paths: TaskPaths) -> Path:
    """Where downloads go: the data dir when writable (so it fills up as a
    cache), else `script/downloads/` of the task (hidden from the agent)."""
    if data_dir is not None and os.access(data_dir, os.W_OK):
        return data_dir
    d = paths.script / "downloads"
    d.mkdir(parents=True, exist_ok=True)
    return d


def where_to_put(task: str, names: Iterable[str]) -> str:
    """The sentence that tells a user on an offline machine what to do."""
    listed = " or ".join(f"DIR/{n}" for n in names)
    return (f"put it at {listed} (DIR/{task}/ works too), then run "
            f"`mlab prepare {task} --data-dir DIR` (or set MLAB_DATA_CACHE=DIR)")


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


class _Progress:
    """Prints a download's progress at most every few seconds, one line each
    (a log file stays readable; a terminal still sees it move)."""

    def __init__(self, label: str, done: int, total: Optional[int]):
        self.label, self.done, self.total = label, done, total
        self.last = 0.0
        self.start = time.monotonic()
        self.start_done = done

    def update(self, n: int, force: bool = False) -> None:
        self.done += n
        now = time.monotonic()
        if not force and now - self.last < 2.0:
            return
        self.last = now
        rate = (self.done - self.start_done) / max(now - self.start, 1e-6)
        mb = self.done / 1e6
        if self.total:
            pct = 100.0 * self.done / self.total
            info(f"{self.label}: {mb:,.1f} / {self.total / 1e6:,.1f} MB ({pct:.0f}%) at {rate / 1e6:.1f} MB/s")
        else:
            info(f"{self.label}: {mb:,.1f} MB at {rate / 1e6:.1f} MB/s")


def download(url: str, dest: Path, md5: Optional[str] = None, timeout: float = 60.0,
             quiet: bool = False) -> Path:
    """Downloads `url` to `dest`, resuming a partial download.

    Data goes to `dest` + ".part" and is renamed only when complete (and
    matching `md5` when given), so an interrupted run never leaves a file that
    looks finished. A rerun continues the .part with an HTTP Range request; a
    server that ignores Range makes it start over cleanly.
    """
    dest = Path(dest)
    if dest.exists():
        if md5 is None or _md5(dest) == md5:
            if not quiet:
                info(f"{dest.name}: already downloaded")
            return dest
        info(f"{dest.name}: checksum does not match; downloading again")
        dest.unlink()
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "mlab-prepare"})
    if have:
        request.add_header("Range", f"bytes={have}-")
        if not quiet:
            info(f"{dest.name}: resuming after {have / 1e6:,.1f} MB")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:
            # The .part already holds everything the server has.
            response = None
        else:
            raise OfflineError(f"downloading {url} failed: HTTP {err.code} {err.reason}") from err
    except (urllib.error.URLError, socket.timeout, ConnectionError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise OfflineError(f"could not reach {url} ({reason})") from err
    if response is not None:
        with response:
            status = getattr(response, "status", 200)
            if have and status != 206:
                if not quiet:
                    info(f"{dest.name}: the server does not resume downloads; starting over")
                have = 0
            length = response.headers.get("Content-Length")
            total = have + int(length) if length is not None else None
            progress = _Progress(dest.name, have, total)
            try:
                with open(part, "ab" if have else "wb") as out:
                    while True:
                        block = response.read(CHUNK)
                        if not block:
                            break
                        out.write(block)
                        if not quiet:
                            progress.update(len(block))
            except (socket.timeout, ConnectionError, OSError) as err:
                raise OfflineError(
                    f"the download of {url} broke off ({err}); run prepare again to resume") from err
            if not quiet:
                progress.update(0, force=True)
            if total is not None and part.stat().st_size < total:
                raise OfflineError(f"the download of {url} ended early; run prepare again to resume")
    if md5 is not None:
        got = _md5(part)
        if got != md5:
            part.unlink()
            raise PrepareError(f"{url} downloaded with md5 {got}, expected {md5}; "
                               "the partial file was removed, run prepare again")
    os.replace(part, dest)
    return dest


def fetch(url: str, names: list, args: argparse.Namespace, paths: TaskPaths,
          what: str, md5: Optional[str] = None) -> Path:
    """An archive from --data-dir if it is there, else downloaded (kept in the
    data dir when writable). Offline, the error says where to put it."""
    found = find_in_data_dir(args.data_dir, paths.name, names)
    if found is not None:
        info(f"using {found}")
        return found
    dest = download_dir(args.data_dir, paths) / names[0]
    try:
        return download(url, dest, md5=md5)
    except OfflineError as err:
        raise PrepareError(
            f"{err}.\nThis task needs {what}. On a machine with internet, download {url} and "
            + where_to_put(paths.name, names)) from None


def _kaggle_command() -> Optional[list]:
    try:
        import kaggle  # noqa: F401  (importing it also checks credentials)
        return [sys.executable, "-m", "kaggle.cli"]
    except ImportError:
        pass
    except Exception:  # credentials missing: the CLI prints the reason itself
        return [sys.executable, "-m", "kaggle.cli"]
    exe = shutil.which("kaggle")
    return [exe] if exe else None


def kaggle_fetch(slug: str, args: argparse.Namespace, paths: TaskPaths,
                 extra_names: Iterable[str] = ()) -> Path:
    """The Kaggle competition data: from --data-dir (`<slug>.zip` or an
    extracted `<slug>/` folder), else downloaded with the Kaggle CLI, which
    needs the user's consent to the rules given by --accept-rules."""
    names = [f"{slug}.zip", slug, *extra_names]
    found = find_in_data_dir(args.data_dir, paths.name, names)
    if found is not None:
        info(f"using {found}")
        return found
    if not args.accept_rules:
        raise PrepareError(
            f"this task uses the Kaggle competition '{slug}'. Read its rules at "
            f"https://www.kaggle.com/competitions/{slug}/rules and join it, then run again with "
            f"--accept-rules (`mlab prepare {paths.name} --accept-rules`). Or download "
            f"{slug}.zip elsewhere and " + where_to_put(paths.name, names[:2]))
    target_dir = download_dir(args.data_dir, paths)
    target = target_dir / f"{slug}.zip"
    if target.exists() and zipfile.is_zipfile(target):
        info(f"{target.name}: already downloaded")
        return target
    cmd = _kaggle_command()
    if cmd is None:
        raise PrepareError("the Kaggle client is not installed: run `python -m pip install kaggle` "
                           "in the task Python, or download the data elsewhere and use --data-dir")
    work = target_dir / f".{slug}.kaggle-part"
    work.mkdir(parents=True, exist_ok=True)
    step(f"downloading Kaggle competition {slug} (the Kaggle client shows progress)")
    result = subprocess.run(cmd + ["competitions", "download", "-c", slug, "-p", str(work)])
    got = work / f"{slug}.zip"
    if result.returncode != 0 or not got.exists():
        raise PrepareError(
            f"the Kaggle download of '{slug}' failed (exit {result.returncode}). A 403 means you have "
            f"not joined the competition or accepted its rules at https://www.kaggle.com/competitions/{slug}/rules; "
            "a 401 means the credentials in ~/.kaggle/kaggle.json are wrong. Run again to resume.")
    if not zipfile.is_zipfile(got):
        got.unlink()
        raise PrepareError(f"the Kaggle download of '{slug}' is not a valid zip; it was removed, run again")
    os.replace(got, target)
    shutil.rmtree(work, ignore_errors=True)
    return target


class Source:
    """A dataset read the same way whether it is a zip, a tar (any
    compression) or an extracted folder. Member names are relative POSIX
    paths; `find` tolerates an extra top folder (Kaggle zips have none, a
    folder the user extracted may have one)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._zip = None
        self._tar = None
        if self.path.is_dir():
            self.kind = "dir"
        elif zipfile.is_zipfile(self.path):
            self.kind = "zip"
            self._zip = zipfile.ZipFile(self.path)
        elif tarfile.is_tarfile(self.path):
            self.kind = "tar"
            self._tar = tarfile.open(self.path)
        else:
            raise PrepareError(f"{self.path} is neither a folder, a zip nor a tar archive; "
                               "remove it and run prepare again")
        self._names: Optional[list] = None

    def names(self) -> list:
        if self._names is None:
            if self.kind == "dir":
                self._names = sorted(
                    p.relative_to(self.path).as_posix() for p in self.path.rglob("*") if p.is_file())
            elif self.kind == "zip":
                self._names = [n for n in self._zip.namelist() if not n.endswith("/")]
            else:
                self._names = [m.name for m in self._tar.getmembers() if m.isfile()]
            self._names = [n for n in self._names if "__MACOSX" not in n]
        return self._names

    def find(self, suffix: str, required: bool = True) -> Optional[str]:
        """The member whose path is `suffix` or ends with "/" + `suffix`;
        the shortest when several match."""
        suffix = suffix.strip("/")
        hits = [n for n in self.names() if n == suffix or n.endswith("/" + suffix)]
        if not hits:
            if required:
                raise PrepareError(f"{self.path} has no file {suffix}; is it the right archive?")
            return None
        return min(hits, key=len)

    def prefix_of(self, suffix: str) -> str:
        """The folder prefix ("" or "a/b/") under which `suffix` lives."""
        name = self.find(suffix)
        return name[: len(name) - len(suffix.strip("/"))]

    def under(self, folder: str) -> list:
        """Members below `folder` (a prefix ending in "/")."""
        return [n for n in self.names() if n.startswith(folder)]

    def open(self, name: str):
        if self.kind == "dir":
            return open(self.path / name, "rb")
        if self.kind == "zip":
            return self._zip.open(name)
        f = self._tar.extractfile(name)
        if f is None:
            raise PrepareError(f"{self.path}: {name} is not a regular file")
        return f

    def read_bytes(self, name: str) -> bytes:
        with self.open(name) as f:
            return f.read()

    def read_csv(self, suffix: str, **kwargs):
        import pandas as pd
        with self.open(self.find(suffix)) as f:
            return pd.read_csv(io.BytesIO(f.read()), **kwargs)

    def extract(self, name: str, dest: Path, link: bool = True) -> None:
        """Writes member `name` to `dest` atomically; from a folder, a hard
        link is made when possible (no copy of big files)."""
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if self.kind == "dir" and link:
            link_or_copy(self.path / name, dest)
            return
        tmp = dest.with_name(dest.name + ".part")
        with self.open(name) as src, open(tmp, "wb") as out:
            shutil.copyfileobj(src, out, CHUNK)
        os.replace(tmp, dest)

    def iter_members(self) -> Iterator:
        """(name, file object) for every file, in archive order; for a tar
        this reads the archive once, front to back (fast for .tar.gz)."""
        if self.kind == "tar":
            with tarfile.open(self.path) as tar:
                for member in tar:
                    if member.isfile() and "__MACOSX" not in member.name:
                        f = tar.extractfile(member)
                        yield member.name, f
            return
        for name in self.names():
            with self.open(name) as f:
                yield name, f


def link_or_copy(src: Path, dest: Path) -> None:
    """Hard-links `src` to `dest` (same file system) or copies it."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists() or dest.is_symlink():
        dest.unlink()
    try:
        os.link(src, dest)
    except OSError:
        shutil.copy2(src, dest)


def reset_dir(path: Path) -> Path:
    """Empties (or makes) a folder that prepare fills, so a rerun starts clean."""
    path = Path(path)
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def write_text(path: Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_csv(df, path: Path, **kwargs) -> None:
    """DataFrame.to_csv, written to a .part file first and then renamed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    kwargs.setdefault("index", False)
    df.to_csv(tmp, **kwargs)
    os.replace(tmp, path)


def require_modules(task: str, modules: Iterable[str]) -> None:
    """Fails early, naming the requirements file, when a module is missing."""
    import importlib.util
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        # The last line is Python's own wording, which mlab reads to name the
        # requirements file and the install command.
        own = Path(__file__).resolve().parents[1] / task / "requirements.txt"
        reqs = f"benchmarks/{task}/requirements.txt" if own.is_file() else "benchmarks/requirements.txt"
        raise PrepareError(
            f"prepare for {task} needs {', '.join(missing)}; install the task's packages: "
            f"python -m pip install -r {reqs}\n"
            f"No module named '{missing[0]}'")


def seeded_split(table, id_column: str, seed: int, test_fraction: float, first_id: int = 0):
    """(train, test): `table` shuffled with a fixed seed, numbered in that
    order in a new first column `id_column` (from `first_id`, so an id says
    nothing about the row), the last `test_fraction` of it being test.
    The same table and seed give the same split on every run."""
    import numpy as np

    order = np.random.RandomState(seed).permutation(len(table))
    shuffled = table.iloc[order].reset_index(drop=True)
    shuffled.insert(0, id_column, np.arange(first_id, first_id + len(shuffled)))
    n_test = int(round(len(shuffled) * test_fraction))
    return shuffled.iloc[: len(shuffled) - n_test], shuffled.iloc[len(shuffled) - n_test:]


def write_split(paths: TaskPaths, train, test, id_column: str, target: str) -> None:
    """env/train.csv (with `target`), env/test.csv (without it) and the
    hidden answers (`id_column`, `target` of the test rows)."""
    step(f"writing train.csv and test.csv to {paths.env}")
    write_csv(train, paths.env / "train.csv")
    write_csv(test.drop(columns=[target]), paths.env / "test.csv")
    step(f"writing the hidden answers to script/{paths.answer.name}")
    write_csv(test[[id_column, target]], paths.answer)
