"""Prepares llama-inference: a LLaMA-7B model folder and the WikiText-103
test texts.

The model is $MLAB_LLAMA_MODEL: a local model folder (with config.json) or a
Hugging Face model name; the default, huggyllama/llama-7b, holds the same
LLaMA-7B weights as the original's decapoda-research/llama-7b-hf, which is
gone. A name is looked up in --data-dir as models/<name's last part>/,
<last part>/ or models/<org>__<name>/, else downloaded with huggingface_hub
(about 13 GB as safetensors; interrupted downloads resume). Its absolute path
goes to env/model_path.txt, which inference.py reads.

The test texts go to env/wikitext-103-v1-test.jsonl, one {"text": line} per
line of wiki.test.tokens (blank lines empty), as the Hugging Face wikitext
dataset has them. Sources, in order: --data-dir DIR (or $MLAB_DATA_CACHE)
holding wikitext-103-v1/test-00000-of-00001.parquet (from the hub's
Salesforce/wikitext), wiki.test.tokens or wikitext-103-v1.zip; else the
parquet file is downloaded (about 0.7 MB).
"""

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "_common"))
import mlab_prepare as mp  # noqa: E402

DEFAULT_MODEL = "huggyllama/llama-7b"
PARQUET = "test-00000-of-00001.parquet"
WIKITEXT_URL = f"https://huggingface.co/datasets/Salesforce/wikitext/resolve/main/wikitext-103-v1/{PARQUET}"
WIKITEXT_NAMES = [f"wikitext-103-v1/{PARQUET}", PARQUET, "wiki.test.tokens",
                  "wikitext-103/wiki.test.tokens", "wikitext-103-v1.zip"]


def is_model_dir(path: Path) -> bool:
    return path.is_dir() and (path / "config.json").is_file()


def resolve_model(name: str, args, paths) -> Path:
    local = Path(name).expanduser()
    if is_model_dir(local):
        return local.resolve()
    last = name.rstrip("/").split("/")[-1]
    flat = name.replace("/", "__")
    candidates = [f"models/{last}", last, f"models/{flat}", flat]
    found = mp.find_in_data_dir(args.data_dir, paths.name, candidates)
    if found is not None and is_model_dir(found):
        mp.info(f"using {found}")
        return found
    dest = mp.download_dir(args.data_dir, paths) / "models" / flat
    if is_model_dir(dest) and not (dest / ".incomplete").exists():
        mp.info(f"using {dest}")
        return dest
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise mp.PrepareError(
            f"model {name!r} is not on disk and huggingface_hub is not installed to download it: "
            f"python -m pip install huggingface_hub, or put the model folder at DIR/models/{last}/ "
            f"and use --data-dir DIR") from None
    mp.step(f"downloading {name} to {dest} (huggingface_hub shows progress and resumes)")
    dest.mkdir(parents=True, exist_ok=True)
    (dest / ".incomplete").write_text("download in progress\n")
    try:
        snapshot_download(repo_id=name, local_dir=str(dest),
                          allow_patterns=["*.json", "*.model", "*.safetensors", "tokenizer*"])
    except Exception as err:  # offline, unknown name, gated model...
        raise mp.PrepareError(
            f"could not download {name!r}: {err}.\nSet MLAB_LLAMA_MODEL to a model you can download or "
            f"to a local folder, or put the model folder at DIR/models/{last}/ and run "
            f"`mlab prepare {paths.name} --data-dir DIR`") from None
    (dest / ".incomplete").unlink()
    return dest


def wikitext_lines(path: Path):
    if path.suffix == ".parquet":
        mp.require_modules("llama-inference", ["pandas", "pyarrow"])
        import pandas as pd
        return [str(t) for t in pd.read_parquet(path)["text"]]
    if path.suffix == ".zip":
        source = mp.Source(path)
        raw = source.read_bytes(source.find("wiki.test.tokens")).decode("utf-8")
    else:
        raw = path.read_text(encoding="utf-8")
    return [line if line.strip() else "" for line in raw.splitlines(keepends=True)]


def main(argv=None):
    paths = mp.TaskPaths(__file__)
    args = mp.parse_args(__doc__, argv)

    mp.step("finding the WikiText-103 test texts")
    source = mp.fetch(WIKITEXT_URL, WIKITEXT_NAMES, args, paths,
                      "the WikiText-103 test split (Salesforce/wikitext, wikitext-103-v1)")
    lines = wikitext_lines(source)
    if not lines:
        raise mp.PrepareError(f"{source} holds no text")
    mp.write_text(paths.env / "wikitext-103-v1-test.jsonl",
                  "".join(json.dumps({"text": line}) + "\n" for line in lines))
    mp.info(f"{len(lines)} lines")

    name = os.environ.get("MLAB_LLAMA_MODEL") or DEFAULT_MODEL
    mp.step(f"finding the model {name}")
    model = resolve_model(name, args, paths)
    mp.write_text(paths.env / "model_path.txt", str(model) + "\n")
    mp.info(f"model_path.txt -> {model}")


if __name__ == "__main__":
    mp.run_main(main)
