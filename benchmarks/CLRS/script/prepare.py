"""Prepares the CLRS task: the CLRS library as editable workspace code, and
the floyd_warshall data of CLRS30.

Library: the modules of the installed dm-clrs package (clrs/_src/*.py and
clrs/_src/algorithms/) are copied into env/, with every `clrs._src` import
rewritten to import the copy in env/ instead. That is the point of this
port: in the original, baselines.py imported processors and the rest from
the installed package, so the agent's edits to processors.py had no effect.
Only import statements change, each on its own line(s), so line numbers stay
as in the library. Its Apache 2.0 licence is copied as env/LICENSE.clrs.

Data: from CLRS30_v1.0.0.tar.gz, the floyd_warshall train and val splits go
to env/CLRS30/CLRS30_v1.0.0/clrs_dataset/ and the test split to
script/CLRS30/ (hidden; the eval reads it there).

Data source, in order: --data-dir DIR (or $MLAB_DATA_CACHE) holding
CLRS30_v1.0.0.tar.gz or its extracted folder CLRS30_v1.0.0/ (with
clrs_dataset/ inside); else the archive is downloaded from DeepMind's bucket
(resumable). The library must be installed: pip install dm-clrs.
"""

import ast
import importlib.util
import re
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "_common"))
import mlab_prepare as mp  # noqa: E402

URL = "https://storage.googleapis.com/dm-clrs/CLRS30_v1.0.0.tar.gz"
FOLDER = "CLRS30_v1.0.0"
ALGORITHM = "floyd_warshall"
SPLIT = re.compile(rf"(?:^|/)(clrs_dataset/{ALGORITHM}_(train|val|test)/.+)$")
APACHE_NOTE = ("The Python modules in this folder other than train.py are copied from DeepMind's CLRS\n"
               "library (https://github.com/google-deepmind/clrs), Copyright DeepMind Technologies\n"
               "Limited, licensed under the Apache License, Version 2.0\n"
               "(http://www.apache.org/licenses/LICENSE-2.0). Their imports were changed to load\n"
               "the copies in this folder.\n")


def library_dir() -> Path:
    spec = importlib.util.find_spec("clrs")
    if spec is None or not spec.submodule_search_locations:
        raise mp.PrepareError("No module named 'clrs': install the CLRS library first "
                              "(python -m pip install -r benchmarks/CLRS/requirements.txt)")
    src = Path(list(spec.submodule_search_locations)[0]) / "_src"
    if not (src / "baselines.py").is_file():
        raise mp.PrepareError(f"{src} has no baselines.py; is this DeepMind's dm-clrs package?")
    return src


def _alias(alias) -> str:
    return alias.name + (f" as {alias.asname}" if alias.asname else "")


def rewrite_imports(text: str, local: set) -> str:
    """`from clrs._src import x` -> `import x`, and `from clrs._src.x[.y]
    import z` -> `from x[.y] import z`, for every x copied into env/ (in
    `local`); other imports are left alone. Line count is preserved."""
    tree = ast.parse(text)
    lines = text.splitlines(keepends=True)
    edits = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom) or node.level or not node.module:
            continue
        if node.module == "clrs._src":
            parts = [f"import {_alias(a)}" if a.name in local else f"from clrs._src import {_alias(a)}"
                     for a in node.names]
            new = "; ".join(parts)
        elif node.module.startswith("clrs._src."):
            sub = node.module[len("clrs._src."):]
            if sub.split(".")[0] not in local:
                continue
            new = f"from {sub} import " + ", ".join(_alias(a) for a in node.names)
        else:
            continue
        edits.append((node.lineno, node.end_lineno, node.col_offset, new))
    for start, end, col, new in sorted(edits, reverse=True):
        indent = lines[start - 1][:col]
        lines[start - 1:end] = [indent + new + "\n"] + ["\n"] * (end - start)
    return "".join(lines)


def copy_library(src: Path, env: Path) -> list:
    modules = sorted(p for p in src.glob("*.py"))
    local = {p.stem for p in modules}
    if (src / "algorithms").is_dir():
        local.add("algorithms")
    for stale in env.glob("*.py"):
        if stale.name != "train.py":
            stale.unlink()
    written = []
    for path in modules:
        if path.name == "train.py":
            raise mp.PrepareError("the CLRS library has a train.py, which would overwrite the starter")
        mp.write_text(env / path.name, rewrite_imports(path.read_text(encoding="utf-8"), local))
        written.append(path.name)
    if "algorithms" in local:
        target = mp.reset_dir(env / "algorithms")
        for path in sorted((src / "algorithms").glob("*.py")):
            mp.write_text(target / path.name, rewrite_imports(path.read_text(encoding="utf-8"), local))
            written.append(f"algorithms/{path.name}")
    return written


def licence_text(src: Path) -> str:
    for dist in src.parent.parent.glob("dm_clrs-*.dist-info"):
        for name in ("LICENSE", "licenses/LICENSE", "LICENSE.txt"):
            if (dist / name).is_file():
                return APACHE_NOTE + "\n" + (dist / name).read_text(encoding="utf-8")
    return APACHE_NOTE


def main(argv=None):
    paths = mp.TaskPaths(__file__)
    args = mp.parse_args(__doc__, argv)

    mp.step("copying the installed CLRS library into env/ (imports made local)")
    src = library_dir()
    written = copy_library(src, paths.env)
    mp.write_text(paths.env / "LICENSE.clrs", licence_text(src))
    mp.info(f"{len(written)} modules from {src}")

    mp.step("finding the CLRS30 data")
    archive = mp.fetch(URL, [f"{FOLDER}.tar.gz", FOLDER, "CLRS30"], args, paths,
                       "the CLRS30 dataset (CLRS30_v1.0.0.tar.gz)")
    source = mp.Source(archive)

    mp.step(f"extracting {ALGORITHM}: train/val to env/CLRS30, test to script/CLRS30")
    visible = mp.reset_dir(paths.env / "CLRS30") / FOLDER
    hidden = mp.reset_dir(paths.script / "CLRS30") / FOLDER
    counts = {"train": 0, "val": 0, "test": 0}
    for name, f in source.iter_members():
        match = SPLIT.search(name)
        if not match:
            continue
        relative, split = match.groups()
        dest = (hidden if split == "test" else visible) / relative
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".part")
        with open(tmp, "wb") as out:
            shutil.copyfileobj(f, out)
        tmp.replace(dest)
        counts[split] += 1
    missing = [s for s, n in counts.items() if n == 0]
    if missing:
        raise mp.PrepareError(f"{archive} has no {ALGORITHM} files for split(s) {missing}")
    mp.info(f"files: {counts}")


if __name__ == "__main__":
    mp.run_main(main)
