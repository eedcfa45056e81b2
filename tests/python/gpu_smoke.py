"""GPU smoke check of the paper tasks' torch starters and evals on fake data.

Not a pytest file (CI has no GPU and no torch): run it by hand on a machine
with torch, torch_geometric (plus pyg_lib or torch_sparse), transformers,
tokenizers and datasets, from the repository root:

    python3 tests/python/gpu_smoke.py OUTDIR

Each check copies a task to /tmp/devcheck, makes fake data in the documented
--data-dir layout, runs prepare.py, the starter (cifar10, identify-contrails,
ogbn-arxiv, babylm with a tiny GPT-2 and tokenizer) or, for llama-inference,
eval.py on a tiny random Llama, and records the score in OUTDIR/results.json
(commands and output in OUTDIR/log.txt).
"""
import gzip
import importlib.util
import io
import json
import os
import pickle
import shutil
import subprocess
import sys
import tarfile
import time
import traceback
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path.cwd()
WORK = Path("/tmp/devcheck")
OUT = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("/tmp/devcheck-out")
OUT.mkdir(parents=True, exist_ok=True)
results = {}


def copy_task(name):
    dest = WORK / name / "benchmarks"
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(ROOT / "benchmarks/_common", dest / "_common")
    shutil.copytree(ROOT / "benchmarks" / name, dest / name)
    return dest / name


def sh(args, cwd, timeout=300, env=None):
    t = time.time()
    r = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                       env=dict(os.environ, **(env or {})))
    log = f"$ {' '.join(map(str, args))}  (cwd {cwd}, {time.time() - t:.1f}s, rc {r.returncode})\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}\n"
    (OUT / "log.txt").open("a").write(log)
    if r.returncode != 0:
        raise RuntimeError(log[-2500:])
    return r.stdout


def score(task_dir, folder):
    spec = importlib.util.spec_from_file_location(f"ev_{task_dir.name}", task_dir / "script/eval.py")
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m.get_score(folder)


def check(name):
    def wrap(fn):
        t = time.time()
        try:
            results[name] = {"ok": True, "result": fn(), "s": round(time.time() - t, 1)}
        except Exception:
            results[name] = {"ok": False, "error": traceback.format_exc()[-2500:], "s": round(time.time() - t, 1)}
        print(name, json.dumps(results[name])[:600], flush=True)
        (OUT / "results.json").write_text(json.dumps(results, indent=1))
        return fn
    return wrap


@check("cifar10")
def _():
    task = copy_task("cifar10")
    data = WORK / "cifar10/data"
    data.mkdir(parents=True, exist_ok=True)
    rng = np.random.RandomState(0)

    def batch(n):
        return pickle.dumps({b"data": rng.randint(0, 256, (n, 3072)).astype(np.uint8),
                             b"labels": rng.randint(0, 10, n).tolist()})
    with tarfile.open(data / "cifar-10-python.tar.gz", "w:gz") as t:
        files = {f"cifar-10-batches-py/data_batch_{i}": batch(300) for i in range(1, 6)}
        files["cifar-10-batches-py/test_batch"] = batch(200)
        files["cifar-10-batches-py/batches.meta"] = pickle.dumps({b"label_names": [b"c%d" % i for i in range(10)]})
        for k, v in files.items():
            info = tarfile.TarInfo(k)
            info.size = len(v)
            t.addfile(info, io.BytesIO(v))
    sh([sys.executable, "prepare.py", "--data-dir", str(data)], task / "script")
    out = sh([sys.executable, "train.py"], task / "env")
    return {"score": score(task, task / "env"), "tail": out.strip().splitlines()[-2:]}


@check("identify-contrails")
def _():
    task = copy_task("identify-contrails")
    comp = WORK / "ic/data/google-research-identify-contrails-reduce-global-warming"
    rng = np.random.RandomState(0)
    for split, n in (("train", 12), ("validation", 4)):
        for r in range(n):
            d = comp / split / str(1000 + r + (100 if split == "validation" else 0))
            d.mkdir(parents=True, exist_ok=True)
            for b in (11, 14, 15):
                np.save(d / f"band_{b}.npy", (250 + 40 * rng.rand(256, 256, 8)).astype(np.float32))
            mask = np.zeros((256, 256, 1), np.int32)
            mask[100:110, 50:120] = 1
            np.save(d / "human_pixel_masks.npy", mask)
    (comp / "train_metadata.json").write_text("{}")
    (comp / "validation_metadata.json").write_text("{}")
    sh([sys.executable, "prepare.py", "--data-dir", str(WORK / "ic/data")], task / "script")
    out = sh([sys.executable, "train.py"], task / "env")
    return {"score": score(task, task / "env"), "tail": out.strip().splitlines()[-2:]}


@check("ogbn-arxiv")
def _():
    task = copy_task("ogbn-arxiv")
    rng = np.random.RandomState(0)
    n = 3000

    def gz(rows):
        return gzip.compress(("\n".join(rows) + "\n").encode())
    data = WORK / "arxiv/data"
    data.mkdir(parents=True, exist_ok=True)
    perm = rng.permutation(n)
    with zipfile.ZipFile(data / "arxiv.zip", "w") as z:
        z.writestr("arxiv/raw/node-feat.csv.gz", gz([",".join(f"{v:.3f}" for v in rng.randn(128)) for _ in range(n)]))
        z.writestr("arxiv/raw/edge.csv.gz", gz([f"{a},{b}" for a, b in rng.randint(0, n, (20000, 2))]))
        z.writestr("arxiv/raw/node-label.csv.gz", gz([str(v) for v in rng.randint(0, 40, n)]))
        z.writestr("arxiv/raw/node_year.csv.gz", gz([str(2000 + v % 20) for v in range(n)]))
        z.writestr("arxiv/split/time/train.csv.gz", gz([str(v) for v in perm[:2000]]))
        z.writestr("arxiv/split/time/valid.csv.gz", gz([str(v) for v in perm[2000:2500]]))
        z.writestr("arxiv/split/time/test.csv.gz", gz([str(v) for v in perm[2500:]]))
    sh([sys.executable, "prepare.py", "--data-dir", str(data)], task / "script")
    out = sh([sys.executable, "train.py"], task / "env")
    return {"score": score(task, task / "env"), "tail": out.strip().splitlines()[-2:]}


def tiny_tokenizer(path, texts, max_len):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=400, special_tokens=["<unk>", "<s>", "</s>"]))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
                                   model_max_length=max_len)
    fast.save_pretrained(path)
    return fast


WORDS = "the cat sat on a mat while dogs ran through green fields under bright summer skies".split()


def fake_text(rng, n_lines, words):
    return [" ".join(rng.choice(WORDS, words)) for _ in range(n_lines)]


@check("babylm")
def _():
    task = copy_task("babylm")
    rng = np.random.RandomState(0)
    src = ["aochildes", "bnc_spoken", "cbt", "children_stories", "gutenberg", "open_subtitles", "qed",
           "simple_wikipedia", "switchboard", "wikipedia"]
    data = WORK / "bl/data/babylm_data"
    for folder, suf, n in (("babylm_10M", "train", 200), ("babylm_dev", "dev", 60), ("babylm_test", "test", 60)):
        (data / folder).mkdir(parents=True, exist_ok=True)
        for s in src:
            (data / folder / f"{s}.{suf}").write_text("\n".join(fake_text(rng, n, 30)) + "\n")
    sh([sys.executable, "prepare.py", "--data-dir", str(WORK / "bl/data")], task / "script")
    from transformers import GPT2Config
    tok = tiny_tokenizer(WORK / "bl/tok", fake_text(rng, 500, 30), 128)
    GPT2Config(n_layer=2, n_head=2, n_embd=64, n_positions=128, vocab_size=len(tok),
               bos_token_id=1, eos_token_id=2).save_pretrained(WORK / "bl/cfg")
    out = sh([sys.executable, "train.py", "--config_name", str(WORK / "bl/cfg"), "--tokenizer_name",
              str(WORK / "bl/tok")], task / "env", timeout=400)
    return {"perplexity": score(task, task / "env"), "tail": out.strip().splitlines()[-1][:300]}


@check("llama-inference")
def _():
    task = copy_task("llama-inference")
    rng = np.random.RandomState(0)
    from transformers import LlamaConfig, LlamaForCausalLM
    lines = fake_text(rng, 300, 200)
    tok = tiny_tokenizer(WORK / "ll/model", lines, 4096)
    LlamaForCausalLM(LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                 num_attention_heads=2, num_key_value_heads=2, vocab_size=len(tok),
                                 bos_token_id=1, eos_token_id=2)).save_pretrained(WORK / "ll/model")
    data = WORK / "ll/data"
    data.mkdir(parents=True, exist_ok=True)
    (data / "wiki.test.tokens").write_text("\n".join(" " + l + " " if i % 3 else "" for i, l in enumerate(lines)) + "\n")
    sh([sys.executable, "prepare.py", "--data-dir", str(data)], task / "script",
       env={"MLAB_LLAMA_MODEL": str(WORK / "ll/model")})
    return {"seconds_per_token": score(task, task / "env")}


print(json.dumps(results, indent=1)[:6000])
