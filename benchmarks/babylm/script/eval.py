"""Scores babylm: perplexity (exp of the mean next-token loss) of the model
and tokenizer in <folder>/output/ on the hidden BabyLM test split.

The test text is prepared as the original's pipeline did: one example per
line of the ten test files (blank lines empty), tokenized with the
submission's tokenizer, concatenated per batch of 1000 lines and cut into
blocks of min(1024, tokenizer limit) tokens (each batch's remainder dropped).
The loss is the mean over blocks of the mean token loss. The test data comes
from this script's folder, never from the workspace.

torch and transformers are imported only when a model is scored, so the
metric functions below can be used (and tested) without them.
"""

import math
import sys
from itertools import chain
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "_common"))
from mlab_eval import SubmissionError  # noqa: E402
TEST_DIR = HERE / "babylm_data" / "babylm_test"
SOURCES = ["aochildes", "bnc_spoken", "cbt", "children_stories", "gutenberg",
           "open_subtitles", "qed", "simple_wikipedia", "switchboard", "wikipedia"]
LINES_PER_BATCH = 1000
MAX_BLOCK = 1024


def read_test_lines(folder=TEST_DIR):
    lines = []
    for source in SOURCES:
        with open(Path(folder) / f"{source}.test", encoding="utf-8") as f:
            lines.extend(line if line.strip() else "" for line in f)
    return lines


def group_into_blocks(token_lists, block_size, lines_per_batch=LINES_PER_BATCH):
    """Blocks of exactly block_size tokens, as the original's batched map made them."""
    blocks = []
    for start in range(0, len(token_lists), lines_per_batch):
        joined = list(chain(*token_lists[start:start + lines_per_batch]))
        usable = (len(joined) // block_size) * block_size
        blocks.extend(joined[i:i + block_size] for i in range(0, usable, block_size))
    return blocks


def perplexity(block_losses) -> float:
    """exp of the mean of per-block mean losses (inf on overflow)."""
    if not block_losses:
        raise SubmissionError("the test text gives no complete block for this tokenizer")
    mean = sum(block_losses) / len(block_losses)
    try:
        return math.exp(mean)
    except OverflowError:
        return float("inf")


def check_output(folder) -> Path:
    output = Path(folder) / "output"
    if not (output / "config.json").is_file():
        raise SubmissionError(f"no model in {output}: train.py must save the model and tokenizer there")
    if not any((output / f).exists() for f in ("tokenizer.json", "tokenizer_config.json", "vocab.json")):
        raise SubmissionError(f"no tokenizer in {output}: save it with tokenizer.save_pretrained('output')")
    return output


def get_score(folder, batch_size=8) -> float:
    output = check_output(folder)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = "cuda" if torch.cuda.is_available() else "cpu"
    tokenizer = AutoTokenizer.from_pretrained(output)
    model = AutoModelForCausalLM.from_pretrained(output).to(device).eval()
    block_size = min(MAX_BLOCK, tokenizer.model_max_length)
    lines = read_test_lines()
    token_lists = []
    for start in range(0, len(lines), LINES_PER_BATCH):
        token_lists.extend(tokenizer(lines[start:start + LINES_PER_BATCH])["input_ids"])
    blocks = group_into_blocks(token_lists, block_size)
    losses = []
    with torch.no_grad():
        for start in range(0, len(blocks), batch_size):
            batch = torch.tensor(blocks[start:start + batch_size], device=device)
            logits = model(input_ids=batch).logits[:, :-1].float()
            targets = batch[:, 1:]
            token_loss = torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.size(-1)), targets.reshape(-1), reduction="none")
            losses.extend(token_loss.view(targets.shape).mean(dim=1).tolist())
    return perplexity(losses)


if __name__ == "__main__":
    print(get_score(sys.argv[1] if len(sys.argv) > 1 else HERE.parent / "env"))
