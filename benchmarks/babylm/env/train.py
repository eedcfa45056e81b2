# Starter script for the babylm task: trains GPT-2 from scratch (the gpt2
# configuration and tokenizer, random weights) for one epoch on the 10M-word
# BabyLM corpus with the Hugging Face Trainer, evaluates on (the first 200
# blocks of) the dev split five times during training, and saves the model
# and tokenizer to output/. Options: python train.py --help.
import argparse
import math
from itertools import chain

import numpy as np
import transformers
from transformers import (AutoConfig, AutoModelForCausalLM, AutoTokenizer, Trainer,
                          TrainingArguments, default_data_collator, set_seed)

from babyLM_for_hf import load_babylm


def parse_args():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--config_name", default="gpt2", help="model configuration to start from (random weights)")
    p.add_argument("--tokenizer_name", default="gpt2")
    p.add_argument("--dataset_config_name", default="babyLM-10M")
    p.add_argument("--output_dir", default="./output")
    p.add_argument("--num_train_epochs", type=float, default=1.0)
    p.add_argument("--per_device_train_batch_size", type=int, default=16)
    p.add_argument("--per_device_eval_batch_size", type=int, default=8)
    p.add_argument("--learning_rate", type=float, default=5e-5)
    p.add_argument("--block_size", type=int, default=None, help="default: min(1024, tokenizer limit)")
    p.add_argument("--max_train_samples", type=int, default=None)
    p.add_argument("--max_eval_samples", type=int, default=200)
    p.add_argument("--eval_steps", type=float, default=0.2, help="a fraction of the run, or a step count")
    p.add_argument("--seed", type=int, default=42)
    return p.parse_args()


def main():
    args = parse_args()
    set_seed(args.seed)
    raw = load_babylm(args.dataset_config_name)

    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer_name)
    config = AutoConfig.from_pretrained(args.config_name)
    model = AutoModelForCausalLM.from_config(config)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"Training a new model from scratch: {n_params / 2**20:.2f}M parameters")
    model.resize_token_embeddings(len(tokenizer))

    block_size = min(1024, tokenizer.model_max_length)
    if args.block_size is not None:
        block_size = min(args.block_size, tokenizer.model_max_length)

    def tokenize(batch):
        return tokenizer(batch["text"])

    def group_texts(batch):
        # Concatenate each batch of texts and cut it into blocks; the rest of
        # each batch (shorter than a block) is dropped.
        joined = {k: list(chain(*batch[k])) for k in batch.keys()}
        total = (len(joined["input_ids"]) // block_size) * block_size
        result = {k: [t[i:i + block_size] for i in range(0, total, block_size)] for k, t in joined.items()}
        result["labels"] = result["input_ids"].copy()
        return result

    tokenized = raw.map(tokenize, batched=True, remove_columns=["text"], desc="tokenizing")
    blocks = tokenized.map(group_texts, batched=True, desc=f"grouping into blocks of {block_size}")
    train_dataset = blocks["train"]
    if args.max_train_samples is not None:
        train_dataset = train_dataset.select(range(min(args.max_train_samples, len(train_dataset))))
    eval_dataset = blocks["validation"].select(range(min(args.max_eval_samples, len(blocks["validation"]))))

    def preprocess_logits_for_metrics(logits, labels):
        if isinstance(logits, tuple):
            logits = logits[0]
        return logits.argmax(dim=-1)

    def compute_metrics(eval_preds):
        preds, labels = eval_preds
        # Token t predicts token t+1.
        labels = labels[:, 1:].reshape(-1)
        preds = preds[:, :-1].reshape(-1)
        return {"accuracy": float(np.mean(preds == labels))}

    training_args = TrainingArguments(
        output_dir=args.output_dir,
        num_train_epochs=args.num_train_epochs,
        per_device_train_batch_size=args.per_device_train_batch_size,
        per_device_eval_batch_size=args.per_device_eval_batch_size,
        learning_rate=args.learning_rate,
        eval_strategy="steps",
        eval_steps=args.eval_steps,
        logging_steps=args.eval_steps,
        save_strategy="no",
        report_to=[],
        seed=args.seed,
    )
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        data_collator=default_data_collator,
        compute_metrics=compute_metrics,
        preprocess_logits_for_metrics=preprocess_logits_for_metrics,
    )
    transformers.utils.logging.set_verbosity_warning()

    train_result = trainer.train()
    trainer.save_model(args.output_dir)
    tokenizer.save_pretrained(args.output_dir)
    print(f"train metrics: {train_result.metrics}")

    metrics = trainer.evaluate()
    try:
        metrics["perplexity"] = math.exp(metrics["eval_loss"])
    except OverflowError:
        metrics["perplexity"] = float("inf")
    print(f"eval metrics: {metrics}")


if __name__ == "__main__":
    main()
