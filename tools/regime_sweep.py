r"""Both training regimes x every method x several seeds, resumable, with a summary table.

  python tools/regime_sweep.py [--root=runs/sweep] [--regimes=scratch,finetune] \
      [--methods=cam,spn,acol,danet,slt,dgl] [--seeds=0,1,2] \
      [--pretrain_first --pretrain_epochs=20] [--smoke] [--print_only] \
      [-- --config.train.checkpoint_selection=best ...]

Regimes: ``scratch`` is ``configs/synthetic_<method>.py`` (a random
initialization, the default experiments); ``finetune`` is its ``:finetune``
variant (the backbone pretrained on the procedural set, fine-tuned by the
papers' recipe, `wsol_keras.configs.base.finetune`).  Each (regime, method,
seed) trains with ``wsol-train --config=synthetic_<method>[:finetune]
--config.seed=<seed>`` into ``<root>/<regime>/<method>/seed<seed>``: a workdir
with ``metrics.json`` is finished and skipped (after checking that its
config.json was trained with the same weights and seed), any other is run
again, which resumes it where it stopped.  DGL needs no training (Tan et al.
2020, Sec. 3): ``dgl`` is ``wsol-eval --map_method=dgl`` on the CAM workdir of
the same regime and seed, at the layer of configs/synthetic_dgl.py, its
record copied to ``<root>/<regime>/dgl/seed<seed>/metrics.json``.

``--pretrain_first`` first runs (or resumes, or extends to
``--pretrain_epochs``) ``configs/pretrain_small_cnn.py`` in ``<root>/pretrain``
and fine-tunes from its ``backbone.weights.h5``
(``--config.model.weights=<path>``) instead of the shipped weights.

At the end it writes ``<root>/summary.json`` and ``<root>/summary.md``: mean
+- std over the finished seeds (population std, as tools/compare_methods.py)
of the test split's Top-1 cls, GT-known Loc, Top-1 Loc, MaxBoxAcc,
MaxBoxAccV2 and PxAP, each with its CAM threshold searched on val
(metrics.json ``threshold_split``) on the checkpoint wsol-train kept
(``checkpoint``: "last" unless ``--config.train.checkpoint_selection=best``).
Arguments after ``--`` go to every wsol-train run.  ``--print_only`` prints
the commands still to run and the table so far, and writes nothing.
"""

import argparse
import glob
import json
import os
import shlex
import subprocess
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
METHODS = ("cam", "spn", "acol", "danet", "slt", "dgl", "has", "adl", "cutmix")
REGIMES = ("scratch", "finetune")
COLUMNS = (
    ("top1_cls", "Top-1 cls"),
    ("gt_known_loc", "GT-known Loc"),
    ("top1_loc", "Top-1 Loc"),
    ("max_box_acc", "MaxBoxAcc"),
    ("max_box_acc_v2", "MaxBoxAccV2"),
    ("pxap", "PxAP"),
)
TRAIN = ("-m", "wsol_keras.training.trainer")
EVAL = ("-m", "wsol_keras.evaluation.evaluator")


def config_spec(name, words):
    """``synthetic_cam:finetune,smoke`` (no ``:`` without words)."""
    return name + (":" + ",".join(words) if words else "")


def workdir_of(root, regime, method, seed):
    return os.path.join(root, regime, method, f"seed{seed}")


def expected_weights(regime, pretrained_path):
    if regime == "scratch":
        return None
    return pretrained_path or "synthetic"


def check_finished(workdir, weights, seed):
    """Raises SystemExit when a finished workdir was trained otherwise."""
    path = os.path.join(workdir, "config.json")
    if not os.path.exists(path):
        return
    with open(path) as f:
        config = json.load(f).get("config", {})
    got_weights = config.get("model", {}).get("weights")
    if got_weights in ("none", "None", ""):
        got_weights = None
    got_seed = config.get("seed")
    if got_weights != weights or got_seed != seed:
        raise SystemExit(
            f"regime_sweep: {workdir} was trained with model.weights={got_weights!r} "
            f"seed={got_seed!r}, not {weights!r} seed={seed!r}; use another --root "
            "or remove that workdir"
        )
    if (weights not in (None, "synthetic") and os.path.exists(weights)
            and os.path.getmtime(weights) > os.path.getmtime(path)):
        raise SystemExit(
            f"regime_sweep: {workdir} was fine-tuned from an older {weights} (the "
            "pretraining ran again since); use another --root or remove that workdir"
        )


def train_command(a, regime, method, seed, pretrained_path):
    words = (["finetune"] if regime == "finetune" else []) + (["smoke"] if a.smoke else [])
    cmd = [
        *TRAIN,
        f"--config={config_spec('synthetic_' + method, words)}",
        f"--workdir={workdir_of(a.root, regime, method, seed)}",
        f"--config.seed={seed}",
    ]
    if regime == "finetune" and pretrained_path:
        cmd.append(f"--config.model.weights={pretrained_path}")
    return cmd + list(a.overrides)


def dgl_layer():
    """The layer of configs/synthetic_dgl.py (read in a child: it imports TF)."""
    code = ("from wsol_keras.configs import synthetic_dgl; "
            "print(synthetic_dgl.get_config().eval.dgl_layer)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True,
                         capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1]


def dgl_command(cam_workdir, layer):
    return [*EVAL, f"--workdir={cam_workdir}", "--split=test",
            "--map_method=dgl", f"--dgl_layer={layer}"]


def find_dgl_record(cam_workdir, layer):
    """The test record of DGL maps at `layer` under ``<cam>/eval/``, or None."""
    for path in sorted(glob.glob(os.path.join(cam_workdir, "eval", "test-dgl*", "metrics.json"))):
        with open(path) as f:
            record = json.load(f)
        if record.get("map_method") == "dgl" and record.get("layer") == layer:
            return record
    return None


def write_json_atomic(path, value):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path + ".tmp", "w") as f:
        json.dump(value, f, indent=2, default=float)
    os.replace(path + ".tmp", path)


def write_text_atomic(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def shown(cmd):
    """A command as a user types it (wsol-train / wsol-eval for the modules)."""
    if tuple(cmd[:2]) == TRAIN:
        return "wsol-train " + shlex.join(cmd[2:])
    if tuple(cmd[:2]) == EVAL:
        return "wsol-eval " + shlex.join(cmd[2:])
    return "python " + shlex.join(cmd)


def run(cmd):
    print("+", shown(cmd), flush=True)
    subprocess.run([sys.executable, *cmd], cwd=REPO, check=True)


def pretrain(a):
    """Runs / resumes / extends the pretraining; returns its backbone file."""
    workdir = os.path.join(a.root, "pretrain")
    words = ["smoke"] if a.smoke else []
    cmd = [*TRAIN, f"--config={config_spec('pretrain_small_cnn', words)}",
           f"--workdir={workdir}", "--allow_config_change", "--noevaluate"]
    if a.pretrain_epochs:
        cmd.append(f"--config.train.epochs={a.pretrain_epochs}")
    path = os.path.join(workdir, "backbone.weights.h5")
    if a.print_only:
        print("to run:", shown(cmd))
    else:
        run(cmd)
    return path


def summarize(results, seeds):
    """{regime: {method: {metrics: {col: [..]}, mean, std, n, seeds}}}."""
    out = {}
    for regime, methods in results.items():
        for method, rows in methods.items():
            done = [(s, r) for s, r in rows if r is not None]
            cell = {"seeds": [s for s, _ in done], "n": len(done), "metrics": {},
                    "mean": {}, "std": {}}
            for key, _ in COLUMNS:
                values = [float(r[key]) for _, r in done if r.get(key) is not None]
                if values:
                    cell["metrics"][key] = values
                    cell["mean"][key] = float(np.mean(values))
                    cell["std"][key] = float(np.std(values))
            for field in ("checkpoint", "threshold_split", "split"):
                found = sorted({str(r.get(field)) for _, r in done})
                cell[field] = found[0] if len(found) == 1 else found
            out.setdefault(regime, {})[method] = cell
    return out


def markdown(summary, seeds, command):
    lines = [
        f"`{command}`",
        "",
        f"Test split, mean +- std over seeds {','.join(map(str, seeds))} "
        "(n: seeds finished); CAM threshold searched on val; "
        "checkpoint: wsol-train's (metrics.json `checkpoint`).",
        "",
        "| regime | method | n | " + " | ".join(c for _, c in COLUMNS) + " |",
        "|---" * (len(COLUMNS) + 3) + "|",
    ]
    for regime, methods in summary.items():
        for method, cell in methods.items():
            cells = [
                f"{cell['mean'][k]:.1f} +- {cell['std'][k]:.1f}" if k in cell["mean"] else "-"
                for k, _ in COLUMNS
            ]
            lines.append(f"| {regime} | {method} | {cell['n']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", default="runs/sweep")
    p.add_argument("--regimes", default=",".join(REGIMES))
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--smoke", action="store_true", help="each run in seconds (tests)")
    p.add_argument("--print_only", action="store_true",
                   help="print the commands still to run and the table so far")
    p.add_argument("--pretrain_first", action="store_true")
    p.add_argument("--pretrain_epochs", type=int, default=20)
    a, overrides = p.parse_known_args(argv)
    bad = [o for o in overrides if o != "--" and not o.startswith("--config.")]
    if bad:
        p.error(f"unknown argument {bad[0]} (wsol-train overrides are --config.FIELD=VALUE)")
    a.overrides = [o for o in overrides if o != "--"]
    a.root = os.path.abspath(a.root)
    a.regimes = [r for r in a.regimes.split(",") if r]
    a.methods = [m for m in a.methods.split(",") if m]
    for kind, given, known in (("regime", a.regimes, REGIMES), ("method", a.methods, METHODS)):
        unknown = [x for x in given if x not in known]
        if unknown:
            p.error(f"--{kind}s: {unknown[0]!r} is not one of {','.join(known)}")
    try:
        a.seeds = [int(s) for s in a.seeds.split(",") if s]
    except ValueError:
        p.error(f"--seeds={a.seeds}: comma-separated integers")
    return a


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    a = parse_args(argv)
    command = "python tools/regime_sweep.py " + shlex.join(
        [x for x in argv if x != "--print_only"])
    pretrained_path = pretrain(a) if a.pretrain_first and "finetune" in a.regimes else None
    layer = dgl_layer() if "dgl" in a.methods else None
    trained = [m for m in a.methods if m != "dgl"]
    if "dgl" in a.methods and "cam" not in trained:
        trained.insert(0, "cam")  # DGL is evaluated on the CAM workdir
    results = {}
    for regime in a.regimes:
        weights = expected_weights(regime, pretrained_path)
        # Seed-major: a sweep stopped part way has the same seeds for every method.
        for seed in a.seeds:
            for method in trained + (["dgl"] if "dgl" in a.methods else []):
                wd = workdir_of(a.root, regime, method, seed)
                metrics_path = os.path.join(wd, "metrics.json")
                if method == "dgl":
                    cam_wd = workdir_of(a.root, regime, "cam", seed)
                    if not os.path.exists(metrics_path) and os.path.exists(
                        os.path.join(cam_wd, "metrics.json")
                    ):
                        check_finished(cam_wd, weights, seed)
                        record = find_dgl_record(cam_wd, layer)
                        if record is None and a.print_only:
                            print("to run:", shown(dgl_command(cam_wd, layer)))
                        elif record is None:
                            run(dgl_command(cam_wd, layer))
                            record = find_dgl_record(cam_wd, layer)
                        if record is not None and not a.print_only:
                            write_json_atomic(metrics_path, {**record, "trained_workdir": cam_wd})
                elif os.path.exists(metrics_path):
                    check_finished(wd, weights, seed)
                else:
                    cmd = train_command(a, regime, method, seed, pretrained_path)
                    if a.print_only:
                        print("to run:", shown(cmd))
                    else:
                        check_finished(wd, weights, seed)
                        run(cmd)
                row = None
                if os.path.exists(metrics_path):
                    with open(metrics_path) as f:
                        row = json.load(f)
                if method in a.methods:
                    results.setdefault(regime, {}).setdefault(method, []).append((seed, row))
    summary = summarize(results, a.seeds)
    table = markdown(summary, a.seeds, command)
    print(table)
    if not a.print_only:
        write_json_atomic(
            os.path.join(a.root, "summary.json"),
            {"command": command, "seeds": a.seeds, "columns": [k for k, _ in COLUMNS],
             "pretrained_backbone": pretrained_path, "results": summary},
        )
        write_text_atomic(os.path.join(a.root, "summary.md"), table)
        print(f"written: {os.path.join(a.root, 'summary.md')} and summary.json")
    return summary


if __name__ == "__main__":
    main()
