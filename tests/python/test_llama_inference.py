"""llama-inference: prepare from a local model folder and wiki.test.tokens,
and the eval end to end (protected section, subprocess run, printed time)
with stand-in transformers/datasets modules."""

import json

import pytest

from conftest import BENCHMARKS, load_eval, load_module, make_dir, prepare_inproc

TOKENS = " = Robert Boulter = \n \n Robert Boulter is an English actor . \n"


def test_prepare_uses_a_local_model_and_the_tokens_file(task_copy, tmp_path, monkeypatch):
    task = task_copy("llama-inference")
    data = make_dir(tmp_path / "data", {"models/llama-7b/config.json": "{}", "wiki.test.tokens": TOKENS})
    monkeypatch.delenv("MLAB_LLAMA_MODEL", raising=False)
    prepare_inproc(task, "--data-dir", str(data))
    assert (task / "env/model_path.txt").read_text().strip() == str(data / "models/llama-7b")
    rows = [json.loads(line)["text"] for line in (task / "env/wikitext-103-v1-test.jsonl").read_text().splitlines()]
    assert rows == [" = Robert Boulter = \n", "", " Robert Boulter is an English actor . \n"]


def test_model_is_configurable_by_environment(task_copy, tmp_path, monkeypatch):
    task = task_copy("llama-inference")
    data = make_dir(tmp_path / "data", {"wiki.test.tokens": TOKENS})
    model = make_dir(tmp_path / "my-model", {"config.json": "{}"})
    monkeypatch.setenv("MLAB_LLAMA_MODEL", str(model))
    prepare_inproc(task, "--data-dir", str(data))
    assert (task / "env/model_path.txt").read_text().strip() == str(model)


def test_missing_model_offline_says_what_to_do(task_copy, tmp_path, monkeypatch):
    import mlab_prepare
    task = task_copy("llama-inference")
    data = make_dir(tmp_path / "data", {"wiki.test.tokens": TOKENS})
    monkeypatch.setenv("MLAB_LLAMA_MODEL", "someorg/absent-model")
    monkeypatch.setitem(__import__("sys").modules, "huggingface_hub", None)  # not installed
    with pytest.raises(mlab_prepare.PrepareError, match="models/absent-model"):
        prepare_inproc(task, "--data-dir", str(data))


def test_shipped_protected_section_matches_the_reference():
    ev = load_module(BENCHMARKS / "llama-inference/script/eval.py", "llama_eval_repo")
    text = (BENCHMARKS / "llama-inference/env/inference.py").read_text()
    assert ev.protected_block(text) == (BENCHMARKS / "llama-inference/script/protected_block.txt").read_text()
    assert "context_length = 128" in ev.protected_block(text)


def test_parse_time_takes_the_last_report():
    ev = load_module(BENCHMARKS / "llama-inference/script/eval.py", "llama_eval_repo")
    out = "Average per token generation time:  0.5\nAverage per token generation time:  0.0625\n"
    assert ev.parse_time(out) == 0.0625
    with pytest.raises(ValueError, match="printed no"):
        ev.parse_time("Traceback ...\nCUDA out of memory\n")


# Stand-ins that satisfy the DO NOT EDIT section without the real libraries.
FAKES = {
    "torch.py": "float32 = 'float32'\n",
    "transformers.py": (
        "class _Model:\n    def to(self, device):\n        return self\n"
        "class AutoModelForCausalLM:\n    @staticmethod\n    def from_pretrained(path, **kw):\n        return _Model()\n"
        "class AutoTokenizer:\n    @staticmethod\n    def from_pretrained(path):\n        return None\n"),
    "datasets.py": (
        "class _Data:\n    def map(self, *a, **kw):\n        return self\n"
        "def load_dataset(*a, **kw):\n    return _Data()\n"),
}


def snapshot(tmp_path, block, tail):
    make_dir(tmp_path, FAKES)
    (tmp_path / "model_path.txt").write_text("/nowhere\n")
    (tmp_path / "inference.py").write_text(
        "import torch\nfrom datasets import load_dataset\n"
        "from transformers import AutoModelForCausalLM, AutoTokenizer\n\n" + block + "\n" + tail)
    return tmp_path


def test_eval_runs_the_script_and_reads_its_time(task_copy, tmp_path):
    task = task_copy("llama-inference")
    block = (task / "script/protected_block.txt").read_text()
    snap = snapshot(tmp_path, block, 'print("Average per token generation time: ", 0.0125)\n')
    assert load_eval(task).get_score(snap) == pytest.approx(0.0125)
    assert not (snap / "__pycache__").exists(), "the run must happen in a scratch copy"


def test_eval_refuses_an_edited_protected_section(task_copy, tmp_path):
    task = task_copy("llama-inference")
    block = (task / "script/protected_block.txt").read_text().replace("context_length = 128", "context_length = 8")
    snap = snapshot(tmp_path, block, 'print("Average per token generation time: ", 0.001)\n')
    with pytest.raises(ValueError, match="DO NOT EDIT section"):
        load_eval(task).get_score(snap)


def test_eval_reports_a_crashing_script(task_copy, tmp_path):
    task = task_copy("llama-inference")
    block = (task / "script/protected_block.txt").read_text()
    snap = snapshot(tmp_path, block, 'raise RuntimeError("no GPU here")\n')
    with pytest.raises(ValueError, match="no GPU here"):
        load_eval(task).get_score(snap)
