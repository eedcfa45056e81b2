"""Scores CLRS: the floyd_warshall test score of the model in a snapshot.

The snapshot's checkpoints/ (best.pkl, model_params.pkl, spec_list.pkl) are
evaluated with the snapshot's own model code: clrs_eval_worker.py runs in a
fresh process with the snapshot first on sys.path, so edits to
processors.py, baselines.py and the rest count (the original loaded the
pristine baselines.py and the installed library). The hidden test split is
read from script/CLRS30/. Timeout: $MLAB_CLRS_EVAL_TIMEOUT seconds (default
1800).
"""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "_common"))
from mlab_eval import SubmissionError  # noqa: E402
DATASET = HERE / "CLRS30" / "CLRS30_v1.0.0"
CHECKPOINTS = ["best.pkl", "model_params.pkl", "spec_list.pkl"]
CODE = ["baselines.py", "processors.py", "dataset.py", "samplers.py", "evaluation.py"]


def parse_worker_output(stdout: str, stderr: str, returncode: int) -> float:
    if returncode != 0:
        tail = "\n".join((stderr or stdout).strip().splitlines()[-8:])
        raise SubmissionError(f"scoring the CLRS model failed (exit {returncode}):\n{tail}")
    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("{"):
            return float(json.loads(line)["score"])
    raise SubmissionError("the CLRS scorer printed no score")


def get_score(folder, timeout=None, dataset=DATASET) -> float:
    folder = Path(folder).resolve()
    missing = [f"checkpoints/{n}" for n in CHECKPOINTS if not (folder / "checkpoints" / n).is_file()]
    missing += [n for n in CODE if not (folder / n).is_file()]
    if missing:
        raise SubmissionError(f"the snapshot lacks {', '.join(missing)}; run train.py so that it saves "
                              "the checkpoints, and keep the library modules")
    if not Path(dataset).is_dir():
        raise SubmissionError(f"the hidden test split is missing ({dataset}); run `mlab prepare CLRS`")
    timeout = timeout or float(os.environ.get("MLAB_CLRS_EVAL_TIMEOUT", "1800"))
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    with tempfile.TemporaryDirectory(prefix="mlab-clrs-eval-") as cwd:
        try:
            run = subprocess.run([sys.executable, str(HERE / "clrs_eval_worker.py"), str(folder), str(dataset)],
                                 cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
        except subprocess.TimeoutExpired:
            raise SubmissionError(f"scoring took longer than {timeout:.0f} s") from None
    return parse_worker_output(run.stdout, run.stderr, run.returncode)


if __name__ == "__main__":
    print(get_score(sys.argv[1] if len(sys.argv) > 1 else HERE.parent / "env"))
