"""Scores one CLRS snapshot; run by eval.py in a fresh Python process.

    python clrs_eval_worker.py SNAPSHOT DATASET_FOLDER

It imports the snapshot's own library modules (baselines.py, processors.py
and the rest, never a pristine or installed copy), rebuilds BaselineModel
from checkpoints/model_params.pkl the way train.py does, restores
checkpoints/best.pkl and evaluates it on the hidden test split. The last
line of output is JSON: {"score": ...}. A fresh process per snapshot means
modules of one snapshot never leak into the scoring of another.
"""

import json
import os
import pickle
import sys

ALGORITHM = "floyd_warshall"
SEED = 42
BATCH_SIZE = 32
LIBRARY = ["baselines", "processors", "dataset", "samplers", "evaluation"]


def main(snapshot, dataset_folder):
    snapshot = os.path.realpath(snapshot)
    sys.dont_write_bytecode = True
    sys.path.insert(0, snapshot)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    modules = {name: __import__(name) for name in LIBRARY}
    for name, module in modules.items():
        where = os.path.realpath(getattr(module, "__file__", "") or "")
        if os.path.dirname(where) != snapshot:
            raise SystemExit(f"{name} was loaded from {where}, not from the snapshot {snapshot}")
    baselines, processors = modules["baselines"], modules["processors"]
    dataset, samplers, evaluation = modules["dataset"], modules["samplers"], modules["evaluation"]
    import jax
    import numpy as np

    checkpoints = os.path.join(snapshot, "checkpoints")
    with open(os.path.join(checkpoints, "model_params.pkl"), "rb") as f:
        model_params = pickle.load(f)
    processor_type, use_ln, nb_triplet_fts, nb_heads = model_params["processor_factory"]
    model_params["processor_factory"] = processors.get_processor_factory(
        processor_type, use_ln=use_ln, nb_triplet_fts=nb_triplet_fts, nb_heads=nb_heads)
    model_params["checkpoint_path"] = checkpoints

    test_data, num_samples, spec = dataset.create_dataset(
        folder=dataset_folder, algorithm=ALGORITHM, split="test", batch_size=BATCH_SIZE)
    spec, sampler = samplers.process_permutations(spec, test_data.as_numpy_iterator(), True)

    first = next(sampler)
    model = baselines.BaselineModel(spec=[spec], dummy_trajectory=[first], **model_params)
    model.init([first.features], SEED + 1)
    model.restore_model("best.pkl", only_load_processor=False)

    rng_key = jax.random.PRNGKey(np.random.RandomState(SEED).randint(2**32))
    outputs, predictions, seen = [], [], 0
    feedback = first
    while seen < num_samples:
        rng_key, key = jax.random.split(rng_key)
        predicted, _ = model.predict(key, feedback.features, algorithm_index=0)
        outputs.append(feedback.outputs)
        predictions.append(predicted)
        seen += feedback.outputs[0].data.shape[0]
        if seen < num_samples:
            feedback = next(sampler)

    def concat(items):
        return jax.tree_util.tree_map(lambda *x: np.concatenate(x, axis=0), *items)

    result = evaluation.evaluate(concat(outputs), concat(predictions))
    print(json.dumps({"score": float(result["score"]), "samples": int(seen)}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
