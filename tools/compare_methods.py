r"""Trains every synthetic_<method> config under one budget and prints the README table.

  python tools/compare_methods.py --workdir=runs/compare [--methods=cam,spn,acol,danet,slt]
      [--dgl_layer=backbone/small_cnn_features/stage3_relu1]

Each method runs `python -m wsol_keras.train --config=configs/synthetic_<m>.py` (same
backbone, epochs, seed and data: only `config.method` differs); a finished workdir is
reused. DGL needs no training: it is evaluated on the CAM workdir's model.
"""

import argparse
import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from wsol_keras import eval_records  # noqa: E402
from wsol_keras import workdir as workdir_lib  # noqa: E402
COLUMNS = (
    ("top1_cls", "Top-1 cls"),
    ("gt_known_loc", "GT-known Loc"),
    ("top1_loc", "Top-1 Loc"),
    ("max_box_acc", "MaxBoxAcc"),
    ("max_box_acc_v2", "MaxBoxAccV2"),
    ("pxap", "PxAP"),
)


def run(args):
    print("+", " ".join(args), flush=True)
    start = time.time()
    subprocess.run([sys.executable, *args], cwd=REPO, check=True)
    return time.time() - start


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workdir", default="runs/compare")
    p.add_argument("--methods", default="cam,spn,acol,danet,slt")
    p.add_argument("--dgl_layer", default="backbone/small_cnn_features/stage3_relu1")
    p.add_argument("overrides", nargs="*", help="extra --config.* flags for every run")
    a = p.parse_args()
    rows, times = {}, {}
    for m in a.methods.split(","):
        wd = os.path.join(a.workdir, m)
        if not os.path.exists(os.path.join(wd, "metrics.json")):
            times[m] = run(
                [
                    "-m",
                    "wsol_keras.train",
                    f"--config=configs/synthetic_{m}.py",
                    f"--workdir={wd}",
                    *a.overrides,
                ]
            )
        with open(os.path.join(wd, "metrics.json")) as f:
            rows[m] = json.load(f)
    if a.dgl_layer and "cam" in rows:
        # DGL maps of the CAM run: wsol-eval writes its own record folder
        # (wsol_keras.eval_records); the CAM training report stays.
        wd = os.path.join(a.workdir, "cam")
        config, _ = workdir_lib.read_config(wd)
        with config.unlocked():
            config.eval.map_method = "dgl"
            config.eval.dgl_layer = a.dgl_layer
        record = os.path.join(
            eval_records.record_dir(wd, eval_records.record_key("test", config)),
            eval_records.RECORD_FILE,
        )
        if not os.path.exists(record):
            times["dgl"] = run(
                [
                    "-m",
                    "wsol_keras.evaluate",
                    f"--workdir={wd}",
                    "--map_method=dgl",
                    f"--dgl_layer={a.dgl_layer}",
                ]
            )
        with open(record) as f:
            rows["dgl (on cam)"] = json.load(f)
    print("| method | " + " | ".join(c for _, c in COLUMNS) + " | wall time |")
    print("|---" * (len(COLUMNS) + 2) + "|")
    for m, r in rows.items():
        cells = " | ".join(f"{r[k]:.1f}" if k in r else "-" for k, _ in COLUMNS)
        t = times.get(m.split(" ")[0])
        print(f"| {m} | {cells} | {f'{t / 60:.1f} min' if t else '-'} |")


if __name__ == "__main__":
    main()
