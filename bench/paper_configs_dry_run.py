"""Every paper config once at its real size: build, two training steps, one
evaluation batch, on random data in the config's layout.

For each CUB / ILSVRC / OpenImages / VOC config (its real input size, class
count and backbone; random weights: ``model.weights=None``) this builds the
compiled model as ``wsol-train`` does (`trainer.build_compiled_model`), runs
two training steps on one random batch (labels, hierarchy labels for DANet,
multi-hot for VOC) and one evaluation batch through the evaluator's map
function (`evaluator.make_map_fn`: logits and localization maps of the config's
map method), each config in its own process. It records per config: the
second training step's time, the process's peak RSS per image of the batch
(CPU: the whole process, model and optimizer included), the parameter count,
the feature-map size the localization maps come from, and the learning-rate
multiplier of every trainable variable (``sgd_l2``'s groups: the
`CoupledSGD.lr_multipliers` the paper configs train with).

Usage:
  python bench/paper_configs_dry_run.py --batch_size=2 [--configs=cub_vgg16_cam,...]
  python bench/paper_configs_dry_run.py --one=cub_vgg16_cam --batch_size=2  # one, in-process

The last printed line is one JSON object.
"""

import argparse
import collections
import importlib
import json
import os
import resource
import subprocess
import sys
import time

CONFIGS = (
    "cub_vgg16_cam", "cub_vgg16_acol", "cub_vgg16_danet", "cub_vgg16_dgl",
    "cub_vgg16_slt", "cub_vgg16_spn", "ilsvrc_vgg16_cam", "ilsvrc_resnet50_cam",
    "ilsvrc_inceptionv3_cam", "openimages_vgg16_cam", "voc07_vgg16_spn",
)
# Classes and hierarchy of each data set (CUB: 200 species, 37 families, 11
# orders as DANet Sec. 4.1; ILSVRC 1000; wsolevaluation OpenImages 100; VOC 20).
NUM_CLASSES = {"cub": 200, "ilsvrc": 1000, "openimages": 100, "voc07": 20}


def _data_info(name, config):
    dataset = name.split("_")[0]
    info = {"num_classes": NUM_CLASSES[dataset], "image_size": int(config.data.image_size),
            "hierarchy_sizes": ()}
    if config.method.name == "danet":
        info["hierarchy_sizes"] = (37, 11)
    return info


def _groups(model):
    """{multiplier: [variable paths]} of the compiled optimizer (1.0 if unlisted)."""
    mult = getattr(model.optimizer, "lr_multipliers", {})
    groups = collections.defaultdict(list)
    for v in model.trainable_variables:
        groups[f"{mult.get(v.path, 1.0):g}"].append(v.path)
    return dict(groups)


def run_one(name, batch_size):
    import numpy as np
    import tensorflow as tf

    from wsol_keras.evaluation import evaluator
    from wsol_keras.training import trainer

    config = importlib.import_module(f"wsol_keras.configs.{name}").get_config()
    config.model.weights = None
    config.train.jit_compile = "false"
    if config.method.name == "slt":
        config.method.classifier_train.epochs = 0  # phase 2's model: all three nets
    info = _data_info(name, config)
    s, c, b = info["image_size"], info["num_classes"], int(batch_size)
    t0 = time.perf_counter()
    model = trainer.build_compiled_model(config, info, steps_per_epoch=10)
    build_s = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    x = {
        "image": tf.constant(rng.uniform(0, 255, (b, s, s, 3)), tf.float32),
        "label": tf.constant(rng.integers(0, c, b), tf.int32),
        "hierarchy": tf.constant(
            np.stack([rng.integers(0, n, b) for n in info["hierarchy_sizes"]], 1)
            if info["hierarchy_sizes"] else np.zeros((b, 0)), tf.int32),
    }
    y = x["label"]
    if config.method.get("multi_label", False):
        y = tf.one_hot(x["label"], c)
        x["label"] = y
    times = []
    for _ in range(2):
        t = time.perf_counter()
        logs = model.train_on_batch(x, y, return_dict=True)
        times.append(time.perf_counter() - t)
    map_fn = evaluator.make_map_fn(model, config)
    labels = tf.constant(rng.integers(0, c, b), tf.int32)
    t = time.perf_counter()
    out = map_fn(x["image"], labels)
    eval_s = time.perf_counter() - t
    raw = out.get("raw_maps", out["maps"])
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    groups = _groups(model)
    return {
        "config": name,
        "method": config.method.name,
        "backbone": config.model.backbone,
        "image_size": s,
        "num_classes": c,
        "batch_size": b,
        "params": int(model.count_params()),
        "map_method": config.eval.map_method,
        "feature_map": list(raw.shape[1:3]),
        "maps": list(out["maps"].shape[1:]),
        "build_s": round(build_s, 2),
        "step1_s": round(times[0], 2),
        "step2_s": round(times[1], 2),
        "eval_batch_s": round(eval_s, 2),
        "finite_loss": bool(np.isfinite(float(logs["loss"]))),
        "peak_rss_mib": round(rss_kib / 1024, 1),
        "peak_rss_mib_per_image": round(rss_kib / 1024 / b, 1),
        "optimizer": config.train.optimizer,
        "lr": config.train.learning_rate,
        "lr_groups": {k: len(v) for k, v in groups.items()},
        "lr_group_vars": groups,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch_size", type=int, default=2)
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--one", default="", help="run one config in this process")
    parser.add_argument("--out", default="", help="append each config's JSON line here")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.batch_size)))
        return
    rows = []
    for name in [n for n in args.configs.split(",") if n]:
        cmd = [sys.executable, os.path.abspath(__file__), f"--one={name}",
               f"--batch_size={args.batch_size}"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        lines = [l for l in proc.stdout.splitlines() if l.startswith("{")]
        if proc.returncode or not lines:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            row = {"config": name, "error": " | ".join(tail)}
        else:
            row = json.loads(lines[-1])
        short = {k: v for k, v in row.items() if k != "lr_group_vars"}
        print(json.dumps(short), flush=True)
        if args.out:
            with open(args.out, "a") as f:
                f.write(json.dumps(row) + "\n")
        rows.append(short)
    print(json.dumps({"batch_size": args.batch_size, "rows": rows}))


if __name__ == "__main__":
    main()
