"""Trains the CLRS baseline on floyd_warshall and keeps the best checkpoint.

Every library module (baselines, processors, samplers, ...) is imported from
this folder, so changes made here are the ones that run. The data of the
fixed splits is read from ./CLRS30 (--dataset_path). Writes, in
--checkpoint_path (./checkpoints):
  spec_list.pkl, model_params.pkl  how to rebuild the model (keep them!)
  best.pkl                         the parameters with the best validation score
Run `python train.py --help` for the options.
"""

import copy
import functools
import os
import pickle
from typing import Any, Dict, List

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # quiet TensorFlow until training starts

from absl import app, flags, logging  # noqa: E402

logging.set_verbosity(logging.ERROR)

import jax  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import dataset  # noqa: E402
import evaluation  # noqa: E402
import processors  # noqa: E402
import samplers  # noqa: E402
import specs  # noqa: E402
from baselines import BaselineModel, BaselineModelChunked  # noqa: E402

flags.DEFINE_list("algorithms", ["floyd_warshall"], "Algorithms to train on.")
flags.DEFINE_list("train_lengths", ["4", "7", "11", "13", "16"],
                  "Graph sizes of the training samples; -1 means the fixed benchmark training set.")
flags.DEFINE_integer("length_needle", -8,
                     "Needle length for the string-matching algorithms (negative: random up to -value; "
                     "0: a quarter of the haystack).")
flags.DEFINE_integer("seed", 42, "Random seed.")
flags.DEFINE_boolean("random_pos", True, "Randomise the `pos` input common to all algorithms.")
flags.DEFINE_boolean("enforce_permutations", True, "Decode permutation pointers as permutations.")
flags.DEFINE_boolean("enforce_pred_as_input", True, "Turn fixed pred_h hints into pred inputs.")
flags.DEFINE_integer("batch_size", 32, "Training batch size.")
flags.DEFINE_boolean("chunked_training", False, "Train on time chunks of the trajectories.")
flags.DEFINE_integer("chunk_length", 16, "Chunk length when chunked_training is set.")
flags.DEFINE_integer("train_steps", 500, "Training iterations.")
flags.DEFINE_integer("eval_every", 50, "Validation every this many steps.")
flags.DEFINE_integer("test_every", 500, "Kept for compatibility; the test split is held out.")
flags.DEFINE_integer("log_every", 50, "Logging every this many steps.")
flags.DEFINE_integer("hidden_size", 128, "Hidden units of the model.")
flags.DEFINE_integer("nb_heads", 1, "Attention heads of the GAT processors.")
flags.DEFINE_integer("nb_msg_passing_steps", 1, "Message-passing steps per hint step.")
flags.DEFINE_float("learning_rate", 0.001, "Learning rate.")
flags.DEFINE_float("grad_clip_max_norm", 1.0, "Gradient clipping by norm; 0 disables it.")
flags.DEFINE_float("dropout_prob", 0.0, "Dropout rate.")
flags.DEFINE_float("hint_teacher_forcing", 0.0,
                   "Probability of feeding ground-truth hints instead of predicted ones in training.")
flags.DEFINE_enum("hint_mode", "encoded_decoded", ["encoded_decoded", "decoded_only", "none"],
                  "encoded_decoded: hints are predicted and fed back (the benchmark's default); "
                  "decoded_only: hints only add losses; none: hints are not used.")
flags.DEFINE_enum("hint_repred_mode", "soft", ["soft", "hard", "hard_on_eval"],
                  "How predicted hints are fed back: soft (softmax/sigmoid), hard (argmax/threshold), "
                  "or soft in training and hard in evaluation.")
flags.DEFINE_boolean("use_ln", True, "Layer normalisation in the processor.")
flags.DEFINE_boolean("use_lstm", False, "An LSTM after message passing.")
flags.DEFINE_integer("nb_triplet_fts", 8, "Triplet features to compute.")
flags.DEFINE_enum("encoder_init", "xavier_on_scalars", ["default", "xavier_on_scalars"],
                  "Initialiser of the encoders.")
flags.DEFINE_enum("processor_type", "triplet_gmpnn",
                  ["deepsets", "mpnn", "pgn", "pgn_mask", "triplet_mpnn", "triplet_pgn",
                   "triplet_pgn_mask", "gat", "gatv2", "gat_full", "gatv2_full", "gpgn", "gpgn_mask",
                   "gmpnn", "triplet_gpgn", "triplet_gpgn_mask", "triplet_gmpnn"],
                  "The processor network.")
flags.DEFINE_string("checkpoint_path", "./checkpoints", "Where checkpoints are saved.")
flags.DEFINE_string("dataset_path", "./CLRS30", "Folder holding the CLRS30 data.")
flags.DEFINE_boolean("freeze_processor", False, "Freeze the processor's weights.")

FLAGS = flags.FLAGS

PRED_AS_INPUT_ALGOS = [
    "binary_search", "minimum", "find_maximum_subarray", "find_maximum_subarray_kadane",
    "matrix_chain_order", "lcs_length", "optimal_bst", "activity_selector", "task_scheduling",
    "naive_string_matcher", "kmp_matcher", "jarvis_march"]


def unpack(v):
    try:
        return v.item()
    except (AttributeError, ValueError):
        return v


def _iterate_sampler(sampler, batch_size):
    while True:
        yield sampler.next(batch_size)


def dataset_folder():
    folder = os.path.join(FLAGS.dataset_path, dataset.get_clrs_folder())
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"no CLRS30 data in {folder}; it is prepared with the task")
    return folder


def make_sampler(length: int, rng: Any, algorithm: str, split: str, batch_size: int,
                 multiplier: int, randomize_pos: bool, enforce_pred_as_input: bool,
                 enforce_permutations: bool, chunked: bool, chunk_length: int,
                 sampler_kwargs: Dict[str, Any]):
    """A sampler of `length`-node samples (or of the fixed split when length
    is -1), its number of samples (negative: endless) and the spec."""
    if length < 0:
        data, num_samples, spec = dataset.create_dataset(
            folder=dataset_folder(), algorithm=algorithm, batch_size=batch_size, split=split)
        sampler = data.as_numpy_iterator()
    else:
        num_samples = samplers.CLRS30[split]["num_samples"] * multiplier
        sampler, spec = samplers.build_sampler(algorithm, seed=rng.randint(2**32),
                                               num_samples=num_samples, length=length,
                                               **sampler_kwargs)
        sampler = _iterate_sampler(sampler, batch_size)
    if randomize_pos:
        sampler = samplers.process_random_pos(sampler, rng)
    if enforce_pred_as_input and algorithm in PRED_AS_INPUT_ALGOS:
        spec, sampler = samplers.process_pred_as_input(spec, sampler)
    spec, sampler = samplers.process_permutations(spec, sampler, enforce_permutations)
    if chunked:
        sampler = dataset.chunkify(sampler, chunk_length)
    return sampler, num_samples, spec


def make_multi_sampler(sizes, rng, **kwargs):
    """One sampler cycling over the given sample sizes."""
    parts, total, spec = [], 0, None
    for length in sizes:
        sampler, num_samples, spec = make_sampler(length, rng, **kwargs)
        parts.append(sampler)
        total += num_samples

    def cycle():
        while True:
            for s in parts:
                yield next(s)
    return cycle(), total, spec


def _concat(items, axis):
    return jax.tree_util.tree_map(lambda *x: np.concatenate(x, axis), *items)


def collect_and_eval(sampler, predict_fn, sample_count, rng_key, extras):
    """Predicts `sample_count` samples and scores them with evaluation.evaluate."""
    processed, preds, outputs = 0, [], []
    while processed < sample_count:
        feedback = next(sampler)
        outputs.append(feedback.outputs)
        new_rng_key, rng_key = jax.random.split(rng_key)
        cur_preds, _ = predict_fn(new_rng_key, feedback.features)
        preds.append(cur_preds)
        processed += feedback.outputs[0].data.shape[0]
    out = evaluation.evaluate(_concat(outputs, 0), _concat(preds, 0))
    if extras:
        out.update(extras)
    return {k: unpack(v) for k, v in out.items()}


def create_samplers(rng, train_lengths: List[int]):
    """Train and validation samplers of every algorithm, and their specs."""
    train_samplers, val_samplers, val_sample_counts, spec_list = [], [], [], []
    for algorithm in FLAGS.algorithms:
        with tf.device("/cpu:0"):  # keep the data pipeline on the CPU
            lengths = train_lengths
            if algorithm in ["naive_string_matcher", "kmp_matcher"]:
                # One haystack size; the needle varies instead.
                longest = max(lengths)
                if longest > 0:
                    longest = (longest * 5) // 4
                lengths = [longest] * (len(lengths) if FLAGS.chunked_training else 1)
            logging.info("Creating samplers for algo %s", algorithm)
            p = tuple(0.1 + 0.1 * i for i in range(9))
            if algorithm in ["articulation_points", "bridges", "mst_kruskal", "bipartite_matching"]:
                p = tuple(np.array(p) / 2)  # sparser graphs keep trajectories short
            sampler_kwargs = dict(p=p, length_needle=FLAGS.length_needle)
            if FLAGS.length_needle == 0:
                sampler_kwargs.pop("length_needle")
            common = dict(algorithm=algorithm, rng=rng, enforce_pred_as_input=FLAGS.enforce_pred_as_input,
                          enforce_permutations=FLAGS.enforce_permutations, chunk_length=FLAGS.chunk_length)
            train_sampler, _, spec = make_multi_sampler(
                sizes=lengths, split="train", batch_size=FLAGS.batch_size, multiplier=-1,
                randomize_pos=FLAGS.random_pos, chunked=FLAGS.chunked_training,
                sampler_kwargs=sampler_kwargs, **common)
            mult = specs.CLRS_30_ALGS_SETTINGS[algorithm]["num_samples_multiplier"]
            val_sampler, val_samples, spec = make_multi_sampler(
                sizes=[np.amax(lengths)], split="val", batch_size=32, multiplier=2 * mult,
                randomize_pos=FLAGS.random_pos, chunked=False, sampler_kwargs=sampler_kwargs, **common)
        spec_list.append(spec)
        train_samplers.append(train_sampler)
        val_samplers.append(val_sampler)
        val_sample_counts.append(val_samples)
    return train_samplers, val_samplers, val_sample_counts, spec_list


def main(unused_argv):
    encode_hints, decode_hints = {"encoded_decoded": (True, True), "decoded_only": (False, True),
                                  "none": (False, False)}[FLAGS.hint_mode]
    train_lengths = [int(x) for x in FLAGS.train_lengths]
    rng = np.random.RandomState(FLAGS.seed)
    rng_key = jax.random.PRNGKey(rng.randint(2**32))

    train_samplers, val_samplers, val_sample_counts, spec_list = create_samplers(rng, train_lengths)

    processor_factory = processors.get_processor_factory(
        FLAGS.processor_type, use_ln=FLAGS.use_ln, nb_triplet_fts=FLAGS.nb_triplet_fts,
        nb_heads=FLAGS.nb_heads)
    model_params = dict(
        processor_factory=processor_factory, hidden_dim=FLAGS.hidden_size, encode_hints=encode_hints,
        decode_hints=decode_hints, encoder_init=FLAGS.encoder_init, use_lstm=FLAGS.use_lstm,
        learning_rate=FLAGS.learning_rate, grad_clip_max_norm=FLAGS.grad_clip_max_norm,
        checkpoint_path=FLAGS.checkpoint_path, freeze_processor=FLAGS.freeze_processor,
        dropout_prob=FLAGS.dropout_prob, hint_teacher_forcing=FLAGS.hint_teacher_forcing,
        hint_repred_mode=FLAGS.hint_repred_mode, nb_msg_passing_steps=FLAGS.nb_msg_passing_steps)

    # How to rebuild the model; scoring reads these files, keep them.
    os.makedirs(FLAGS.checkpoint_path, exist_ok=True)
    with open(os.path.join(FLAGS.checkpoint_path, "spec_list.pkl"), "wb") as f:
        pickle.dump(spec_list, f)
    saved = copy.deepcopy(model_params)
    saved["processor_factory"] = (FLAGS.processor_type, FLAGS.use_ln, FLAGS.nb_triplet_fts, FLAGS.nb_heads)
    with open(os.path.join(FLAGS.checkpoint_path, "model_params.pkl"), "wb") as f:
        pickle.dump(saved, f)

    eval_model = BaselineModel(spec=spec_list, dummy_trajectory=[next(t) for t in val_samplers],
                               **model_params)
    if FLAGS.chunked_training:
        train_model = BaselineModelChunked(spec=spec_list, dummy_trajectory=[next(t) for t in train_samplers],
                                           **model_params)
    else:
        train_model = eval_model

    best_score = -1.0
    current_train_items = [0] * len(FLAGS.algorithms)
    step = next_eval = length_idx = 0
    # Scores improve on the first evaluation but do not beat the best until
    # every algorithm has been evaluated once.
    val_scores = [-99999.9] * len(FLAGS.algorithms)

    while step < FLAGS.train_steps:
        feedback_list = [next(t) for t in train_samplers]
        if step == 0:
            all_features = [f.features for f in feedback_list]
            if FLAGS.chunked_training:
                # Initialise with samples of every length, in training order.
                all_length_features = [all_features] + [
                    [next(t).features for t in train_samplers] for _ in range(len(train_lengths))]
                train_model.init(all_length_features[:-1], FLAGS.seed + 1)
            else:
                train_model.init(all_features, FLAGS.seed + 1)
        logging.set_verbosity(logging.INFO)

        for algo_idx, feedback in enumerate(feedback_list):
            rng_key, new_rng_key = jax.random.split(rng_key)
            index = (length_idx, algo_idx) if FLAGS.chunked_training else algo_idx
            cur_loss = train_model.feedback(rng_key, feedback, index)
            rng_key = new_rng_key
            if FLAGS.chunked_training:
                current_train_items[algo_idx] += np.sum(feedback.features.is_last).item()
            else:
                current_train_items[algo_idx] += len(feedback.features.lengths)
            if step % FLAGS.log_every == 0:
                logging.info("Algo %s step %i current loss %f, current_train_items %i.",
                             FLAGS.algorithms[algo_idx], step, cur_loss, current_train_items[algo_idx])

        if step >= next_eval:
            eval_model.params = train_model.params
            for algo_idx in range(len(train_samplers)):
                extras = {"examples_seen": current_train_items[algo_idx], "step": step,
                          "algorithm": FLAGS.algorithms[algo_idx]}
                new_rng_key, rng_key = jax.random.split(rng_key)
                val_stats = collect_and_eval(val_samplers[algo_idx],
                                             functools.partial(eval_model.predict, algorithm_index=algo_idx),
                                             val_sample_counts[algo_idx], new_rng_key, extras)
                logging.info("(val) algo %s step %d: %s", FLAGS.algorithms[algo_idx], step, val_stats)
                val_scores[algo_idx] = val_stats["score"]
            next_eval += FLAGS.eval_every
            msg = (f"best avg val score was {best_score / len(FLAGS.algorithms):.3f}, "
                   f"current avg val score is {np.mean(val_scores):.3f}, val scores are: "
                   + ", ".join(f"{a}: {s:.3f}" for a, s in zip(FLAGS.algorithms, val_scores)))
            if sum(val_scores) > best_score or step == 0:
                best_score = sum(val_scores)
                logging.info("Checkpointing best model, %s", msg)
                train_model.save_model("best.pkl")
            else:
                logging.info("Not saving new best model, %s", msg)

        step += 1
        length_idx = (length_idx + 1) % len(train_lengths)

    logging.info("Restoring best model from checkpoint...")
    eval_model.restore_model("best.pkl", only_load_processor=False)
    for algo_idx in range(len(train_samplers)):
        new_rng_key, rng_key = jax.random.split(rng_key)
        val_stats = collect_and_eval(val_samplers[algo_idx],
                                     functools.partial(eval_model.predict, algorithm_index=algo_idx),
                                     val_sample_counts[algo_idx], new_rng_key,
                                     {"step": step, "algorithm": FLAGS.algorithms[algo_idx]})
        logging.info("(val, best checkpoint) algo %s : %s", FLAGS.algorithms[algo_idx], val_stats)
    logging.info("Done! The test split is held out; the checkpoint is scored on it after you finish.")


if __name__ == "__main__":
    app.run(main)
