r"""Trains every synthetic_<method> config under one budget, over several seeds, and prints the README table.

  python tools/compare_methods.py --workdir=runs/compare --seeds=0,1,2 \
      [--methods=cam,spn,acol,danet,slt] [--dgl_layer=backbone/small_cnn_features/stage3_relu1] \
      [--config.train.epochs=6 --config.data.synthetic.num_train=800]

Each (method, seed) runs `python -m wsol_keras.training.trainer --config=configs/synthetic_<m>.py
--config.seed=<seed>` (same backbone, epochs and data: only `config.method` and the seed
differ); a finished workdir is reused. DGL needs no training: it is evaluated on the CAM
model of the same seed. Every model is also evaluated on the *val* split (without
writing into its workdir), and the table marks the best localizer on val (MaxBoxAccV2,
mean over seeds): the rule by which the default experiment is chosen. Cells are
mean +- std (population std over the seeds) of the test split.
"""

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLUMNS = (
    ("top1_cls", "Top-1 cls"),
    ("gt_known_loc", "GT-known Loc"),
    ("top1_loc", "Top-1 Loc"),
    ("max_box_acc", "MaxBoxAcc"),
    ("max_box_acc_v2", "MaxBoxAccV2"),
    ("pxap", "PxAP"),
)
SELECT_BY = "max_box_acc_v2"


def run(args):
    print("+", " ".join(args), flush=True)
    start = time.time()
    subprocess.run([sys.executable, *args], cwd=REPO, check=True)
    return time.time() - start


def evaluate_split(workdir, split, map_method=None, layer=None):
    """Metrics of a trained workdir on `split`, computed in a subprocess, not written."""
    out = os.path.join(workdir, f"compare-{split}-{map_method or 'own'}.json")
    if not os.path.exists(out):
        args = [__file__, "--_evaluate", workdir, "--_split", split, "--_out", out]
        if map_method:
            args += ["--_map_method", map_method, "--_layer", layer or ""]
        run(args)
    with open(out) as f:
        return json.load(f)


def _evaluate_main(a):
    # In-process evaluation of one workdir (child process of `evaluate_split`).
    from wsol_keras import data as data_lib
    from wsol_keras.evaluation import evaluator
    from wsol_keras.training import workdir as workdir_lib
    model, config, _ = workdir_lib.load_model(a._evaluate)
    with config.unlocked():
        if a._map_method:
            config.eval.map_method = a._map_method
            config.eval.dgl_layer = a._layer
    source = data_lib.get_source(config.data)
    metrics = evaluator.evaluate_model(model, source, config, a._split)
    metrics = {k: v for k, v in metrics.items() if not k.startswith("_")}
    with open(a._out + ".tmp", "w") as f:
        json.dump(metrics, f, indent=2, default=float)
    os.replace(a._out + ".tmp", a._out)


def summarize(values):
    v = np.asarray(values, float)
    return f"{v.mean():.1f} +- {v.std():.1f}"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workdir", default="runs/compare")
    p.add_argument("--methods", default="cam,spn,acol,danet,slt")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--dgl_layer", default="backbone/small_cnn_features/stage3_relu1")
    p.add_argument("--_evaluate", help=argparse.SUPPRESS)
    p.add_argument("--_split", help=argparse.SUPPRESS)
    p.add_argument("--_out", help=argparse.SUPPRESS)
    p.add_argument("--_map_method", help=argparse.SUPPRESS)
    p.add_argument("--_layer", help=argparse.SUPPRESS)
    # Any other argument (e.g. --config.train.epochs=6) goes to every wsol-train run.
    a, overrides = p.parse_known_args()
    a.overrides = [o for o in overrides if o != "--"]
    if a._evaluate:
        return _evaluate_main(a)
    seeds = [int(s) for s in a.seeds.split(",")]
    test, val, times = {}, {}, {}
    for m in a.methods.split(","):
        for seed in seeds:
            wd = os.path.abspath(os.path.join(a.workdir, f"{m}-seed{seed}"))
            if not os.path.exists(os.path.join(wd, "model.weights.h5")):
                times.setdefault(m, []).append(
                    run(
                        [
                            "-m",
                            "wsol_keras.training.trainer",
                            f"--config=configs/synthetic_{m}.py",
                            f"--workdir={wd}",
                            f"--config.seed={seed}",
                            "--noevaluate",
                            *a.overrides,
                        ]
                    )
                )
            test.setdefault(m, []).append(evaluate_split(wd, "test"))
            val.setdefault(m, []).append(evaluate_split(wd, "val"))
            if m == "cam" and a.dgl_layer:
                key = "dgl (on cam)"
                test.setdefault(key, []).append(
                    evaluate_split(wd, "test", "dgl", a.dgl_layer)
                )
                val.setdefault(key, []).append(
                    evaluate_split(wd, "val", "dgl", a.dgl_layer)
                )
    best = max(val, key=lambda k: np.mean([r[SELECT_BY] for r in val[k]]))
    print(f"seeds {seeds}; mean +- std over seeds; test split")
    print("| method | " + " | ".join(c for _, c in COLUMNS) + " | val MaxBoxAccV2 |")
    print("|---" * (len(COLUMNS) + 2) + "|")
    summary = {}
    for m, runs in test.items():
        cells = " | ".join(
            summarize([r[k] for r in runs]) if k in runs[0] else "-" for k, _ in COLUMNS
        )
        v = summarize([r[SELECT_BY] for r in val[m]])
        mark = " (best on val)" if m == best else ""
        print(f"| {m}{mark} | {cells} | {v} |")
        summary[m] = {
            k: [r[k] for r in runs] for k, _ in COLUMNS if k in runs[0]
        }
        summary[m]["val_" + SELECT_BY] = [r[SELECT_BY] for r in val[m]]
    for m, t in times.items():
        print(f"train wall time {m}: {np.mean(t) / 60:.1f} min per run")
    print(json.dumps({"seeds": seeds, "best_on_val": best, "results": summary}))


if __name__ == "__main__":
    main()
