"""Scores llama-inference: runs the submitted inference.py (in a scratch
copy of the snapshot) and returns the "Average per token generation time"
it prints, in seconds; lower is better.

The section between "#### DO NOT EDIT ######" and the next line of #'s must
be exactly as shipped (script/protected_block.txt), so that model, data and
lengths stay fixed; a changed section is an error, not a score. The run needs
the GPU the task declares. Timeout: $MLAB_LLAMA_EVAL_TIMEOUT seconds
(default 3600).
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "_common"))
from mlab_eval import SubmissionError  # noqa: E402
ENV = HERE.parent / "env"
START = "#### DO NOT EDIT ######"
END = re.compile(r"^#{5,}[ \t]*$", re.M)
TIME = re.compile(r"Average per token generation time:\s*([-+0-9.eE]+)")
DATA_FILES = ["model_path.txt", "wikitext-103-v1-test.jsonl"]


def protected_block(text: str) -> str:
    start = text.find(START)
    if start < 0:
        raise SubmissionError(f"inference.py has lost its '{START}' line")
    end = END.search(text, start + len(START))
    if end is None:
        raise SubmissionError("inference.py has lost the line of #'s that closes the DO NOT EDIT section")
    return text[start:end.end()] + "\n"


def parse_time(output: str) -> float:
    found = TIME.findall(output)
    if not found:
        tail = "\n".join(output.strip().splitlines()[-5:])
        raise SubmissionError(f"inference.py printed no 'Average per token generation time'; it ended with:\n{tail}")
    value = float(found[-1])
    if not value > 0:
        raise SubmissionError(f"the reported time {value} is not a positive number of seconds")
    return value


def get_score(folder, timeout=None) -> float:
    folder = Path(folder)
    script = folder / "inference.py"
    if not script.is_file():
        raise SubmissionError(f"inference.py not found in {folder}")
    if protected_block(script.read_text()) != (HERE / "protected_block.txt").read_text():
        raise SubmissionError("the DO NOT EDIT section of inference.py was changed; it must stay as shipped")
    timeout = timeout or float(os.environ.get("MLAB_LLAMA_EVAL_TIMEOUT", "3600"))
    with tempfile.TemporaryDirectory(prefix="mlab-llama-eval-") as scratch:
        work = Path(scratch) / "ws"
        shutil.copytree(folder, work, symlinks=True)
        for name in DATA_FILES:  # read-only files are not part of a snapshot
            if not (work / name).exists() and (ENV / name).exists():
                shutil.copy2(ENV / name, work / name)
        try:
            run = subprocess.run([sys.executable, "inference.py"], cwd=work, capture_output=True,
                                 text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise SubmissionError(f"inference.py ran longer than {timeout:.0f} s") from None
    if run.returncode != 0:
        tail = "\n".join(run.stderr.strip().splitlines()[-8:])
        raise SubmissionError(f"inference.py failed (exit {run.returncode}):\n{tail}")
    return parse_time(run.stdout)


if __name__ == "__main__":
    print(get_score(sys.argv[1] if len(sys.argv) > 1 else ENV))
