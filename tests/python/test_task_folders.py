"""Every paper task folder is complete and consistent: task.toml, the files
mlab expects, evals and prepares importable without the heavy frameworks,
all Python compiling, and no answers shipped under env/."""

import py_compile
import sys
import tomllib
from pathlib import Path

import pytest

from conftest import BENCHMARKS, PAPER_TASKS, load_module

REQUIRED = {"name", "description", "category", "metric", "direction", "submission"}
ALLOWED = REQUIRED | {"baseline", "paper_baseline", "paper_baseline_source", "baseline_script", "requires"}
HEAVY = ["torch", "torchvision", "transformers", "datasets", "jax", "haiku", "tensorflow",
         "tensorflow_datasets", "keras", "ogb", "torch_geometric", "clrs", "kaggle"]
TASKS = sorted(PAPER_TASKS)


def spec(task):
    return tomllib.loads((BENCHMARKS / task / "task.toml").read_text())


@pytest.mark.parametrize("task", TASKS)
def test_task_toml_is_complete_and_valid(task):
    s = spec(task)
    assert REQUIRED <= set(s), f"missing {REQUIRED - set(s)}"
    assert set(s) <= ALLOWED, f"unknown keys {set(s) - ALLOWED}"
    assert s["name"] == task
    assert s["direction"] == PAPER_TASKS[task]
    assert isinstance(s["submission"], list) and s["submission"] and all(isinstance(x, str) for x in s["submission"])
    assert "baseline" not in s, "baseline is recorded only when measured"
    if "paper_baseline" in s:
        assert s.get("paper_baseline_source"), "a paper_baseline needs its source"
        assert task != "llama-inference", "time-based tasks get no fixed baseline"
    req = s.get("requires", {})
    assert set(req) <= {"gpu", "internet", "kaggle", "python"}
    assert isinstance(req.get("gpu", False), bool) and isinstance(req.get("internet", False), bool)
    assert (BENCHMARKS / task / req["python"]).is_file()


@pytest.mark.parametrize("task", TASKS)
def test_tasks_that_download_declare_it(task):
    # `mlab prepare --all` skips tasks that need Kaggle or the internet, so an
    # offline machine is not sent to download gigabytes; every paper task
    # downloads unless --data-dir supplies the archives.
    req = spec(task).get("requires", {})
    assert req.get("kaggle") or req.get("internet") is True


def test_fixed_paper_baselines_are_the_originals():
    assert spec("imdb")["paper_baseline"] == 0.5
    assert spec("spaceship-titanic")["paper_baseline"] == 0.5
    assert spec("ogbn-arxiv")["paper_baseline"] == 0.3134


@pytest.mark.parametrize("task", TASKS)
def test_task_folder_has_the_expected_files(task):
    d = BENCHMARKS / task
    for rel in ["env", "script/prepare.py", "script/eval.py", "script/research_problem.txt",
                "script/read_only_files.txt", "requirements.txt", "README.md", ".gitignore"]:
        assert (d / rel).exists(), rel
    assert len((d / "script/research_problem.txt").read_text().strip()) > 50
    readme = (d / "README.md").read_text()
    assert "## Differences from the original (deliberate)" in readme
    ignored = (d / ".gitignore").read_text()
    assert "/script/prepared" in ignored and "/script/downloads/" in ignored
    for line in (d / "script/read_only_files.txt").read_text().split():
        assert not line.startswith("/") and ".." not in line, line


@pytest.mark.parametrize("task", TASKS)
def test_eval_and_prepare_import_without_heavy_frameworks(task, monkeypatch):
    for name in HEAVY:
        monkeypatch.setitem(sys.modules, name, None)  # importing it now raises ImportError
    ev = load_module(BENCHMARKS / task / "script/eval.py", f"light_eval_{task.replace('-', '_')}")
    assert callable(ev.get_score)
    prep = load_module(BENCHMARKS / task / "script/prepare.py", f"light_prep_{task.replace('-', '_')}")
    assert callable(prep.main)


@pytest.mark.parametrize("task", TASKS + ["_common"])
def test_all_python_files_compile(task, tmp_path):
    files = [p for p in (BENCHMARKS / task).rglob("*.py") if "__pycache__" not in p.parts]
    assert files
    for path in files:
        py_compile.compile(str(path), cfile=str(tmp_path / "x.pyc"), doraise=True)


@pytest.mark.parametrize("task", TASKS)
def test_no_answers_ship_under_env(task):
    env = BENCHMARKS / task / "env"
    names = [p.relative_to(env).as_posix().lower() for p in env.rglob("*")]
    assert not [n for n in names if "answer" in n or n.startswith("test_answer")]
    # What prepare writes under script/ (answers, hidden splits) is ignored by git.
    ignored = (BENCHMARKS / task / ".gitignore").read_text()
    if task not in ("llama-inference",):
        assert any(line.startswith("/script/") and "downloads" not in line and "prepared" not in line
                   for line in ignored.splitlines()), "hidden answers must be ignored"


def test_env_metric_and_eval_of_fathomnet_stay_in_step():
    env_metric = (BENCHMARKS / "fathomnet/env/metric.py").read_text()
    ev = (BENCHMARKS / "fathomnet/script/eval.py").read_text()
    for fn in ("def average_precision_at_k", "def map_at_k", "def roc_auc"):
        assert fn in env_metric and fn in ev


# Every task, offline and paper: the ones with an eval.py.
ALL_TASKS = sorted(p.parents[1].name for p in BENCHMARKS.glob("*/script/eval.py"))


def test_every_task_is_covered_by_the_shared_helper_checks():
    assert len(ALL_TASKS) == 17, ALL_TASKS
    assert set(PAPER_TASKS) <= set(ALL_TASKS)


@pytest.mark.parametrize("task", ALL_TASKS)
def test_every_eval_uses_the_shared_eval_helper_and_one_answer_name(task):
    script = BENCHMARKS / task / "script"
    ev_text = (script / "eval.py").read_text()
    assert "class SubmissionError" not in ev_text, "SubmissionError comes from _common/mlab_eval.py"
    assert 'parents[2] / "_common"' in ev_text and "mlab_eval" in ev_text
    sources = ev_text + ((script / "prepare.py").read_text() if (script / "prepare.py").exists() else "")
    assert "answers.csv" not in sources and '"answer.csv"' not in sources, \
        "the answer file is named once, by mlab_eval.ANSWER_FILE"
    assert "argparse" not in sources and "os.path" not in sources
    ev = load_module(script / "eval.py", f"shared_eval_{task.replace('-', '_')}")
    assert callable(ev.get_score)


@pytest.mark.parametrize("task", [t for t in ALL_TASKS if (BENCHMARKS / t / "script/prepare.py").exists()])
def test_every_prepare_uses_the_shared_prepare_helper(task):
    text = (BENCHMARKS / task / "script/prepare.py").read_text()
    assert "import mlab_prepare as mp" in text and "mp.parse_args(" in text and "mp.run_main(main)" in text
    ignored = (BENCHMARKS / task / ".gitignore").read_text()
    if "paths.answer" in text or "mp.write_split(" in text:
        import mlab_eval
        assert mlab_eval.ANSWER_FILE in ignored, "the hidden answers must be ignored by git"
