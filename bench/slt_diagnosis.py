r"""SLT-Net's localizer on a CUB-layout folder it never saw: per-epoch traces and ablations.

Renders a part-domination set with another class structure than the built-in
benchmark (default: 2 body groups x 4 leaf classes, 96 px files, seed 7) into
the CUB-200-2011 layout, then trains SLT-Net (configs/synthetic_slt.py with
only --config.data.* overrides, 64 px model input) and one ablation per
variant.  After every epoch (and before the first) it records, on the val
split (CUB holdout):

* the localizer's top-K ACAM (Eq. 9), upsampled to the input and min-max
  normalized as the pseudo box and the evaluation see it: mean, spread (std),
  fraction of pixels >= box_threshold, mean inside vs outside the GT box;
* the area of the pseudo box (fraction of the image) and of the regressor's
  box, and GT-known Loc (IoU >= 0.5) of both;
* each loss term of the epoch (class-tolerant, VST x beta, regressor, cls).

    PYTHONPATH=$PWD nice -n 5 python bench/slt_diagnosis.py \
        --variants=paper,k1_ce,vst_off --epochs=6

Variants (method overrides on top of configs/synthetic_slt.py): see VARIANTS.
The last line is JSON.
"""

import argparse
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from wsol_keras import data as data_lib  # noqa: E402
from bn_cub_layout import write_cub_layout  # noqa: E402  (this folder's CUB writer)
from wsol_keras.localization.primitives import (  # noqa: E402
    normalize_maps,
    select_class_maps,
    topk_class_ids,
    upsample_maps,
)
from wsol_keras.models import phases as method_phases  # noqa: E402
from wsol_keras.training import trainer  # noqa: E402

# name -> (method overrides, other config overrides)
VARIANTS = {
    # configs/synthetic_slt.py as shipped: K=2, alpha=0.4, beta=10.
    "paper": ({}, {}),
    # The same with the pseudo box as the extent of every pixel above the
    # threshold instead of the largest connected component.
    "extent": ({"pseudo_box": "extent"}, {}),
    # K=1, alpha=1, beta=0: Eq. 8 is plain cross-entropy, no VST (a CAM).
    "k1_ce": ({"k": 1, "alpha": 1.0, "beta": 0.0}, {}),
    # K=1, alpha=1 with VST: plain CE + beta * L_VST.
    "k1_ce_vst": ({"k": 1, "alpha": 1.0}, {}),
    "vst_off": ({"beta": 0.0}, {}),
    "beta1": ({"beta": 1.0}, {}),
    "alpha0.1": ({"alpha": 0.1}, {}),
    "alpha1": ({"alpha": 1.0}, {}),
    "k4": ({"k": 4}, {}),
}


def render(root, num_groups, classes_per_group, per_class, file_size, seed):
    """Synthetic scenes at file_size written as CUB (PNG, x y w h boxes)."""
    cfg = data_lib.default_data_config()
    s = cfg.synthetic
    s.num_groups, s.classes_per_group, s.seed = num_groups, classes_per_group, seed
    num_classes = num_groups * classes_per_group
    s.num_train = per_class * num_classes
    s.num_val = 8
    s.num_test = 8
    cfg.image_size = file_size
    return write_cub_layout(root, data_lib.get_source(cfg))


def iou(a, b):
    ix = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]) + 1, 0, None)
    iy = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]) + 1, 0, None)
    inter = ix * iy

    def area(x):
        return (x[:, 2] - x[:, 0] + 1) * (x[:, 3] - x[:, 1] + 1)

    return inter / (area(a) + area(b) - inter)


class Trace(keras.callbacks.Callback):
    """Per-epoch statistics of the localizer map and boxes on val."""

    def __init__(self, images, boxes, size):
        super().__init__()
        self.images, self.gt, self.size = images, boxes, size
        self.rows = []

    def stats(self, logs=None):
        m = self.model
        maps, pseudo, reg = [], [], []
        for i in range(0, len(self.images), 64):
            out = m(self.images[i : i + 64], training=False)
            acam = select_class_maps(
                out["cams"], topk_class_ids(out["localizer_logits"], m.top_k)
            )
            maps.append(np.asarray(normalize_maps(upsample_maps(acam, self.size))))
            pseudo.append(
                np.asarray(m.localizer_boxes(out["cams"], out["localizer_logits"], (self.size,) * 2))
            )
            reg.append(np.asarray(out["boxes"]))
        maps = np.concatenate(maps)
        s1 = self.size - 1.0
        pseudo = np.concatenate(pseudo) * s1
        reg = np.concatenate(reg) * s1
        inside = np.zeros(maps.shape, bool)
        for j, b in enumerate(self.gt.astype(int)):
            inside[j, b[1] : b[3] + 1, b[0] : b[2] + 1] = True

        def area(b):
            return float(np.mean((b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)) / self.size**2)

        logs = logs or {}
        row = {
            "epoch": len(self.rows),
            "map_mean": float(maps.mean()),
            "map_std": float(maps.std(axis=(1, 2)).mean()),
            "frac_above": float((maps >= m.box_threshold).mean()),
            "map_in_box": float(maps[inside].mean()),
            "map_out_box": float(maps[~inside].mean()) if (~inside).any() else float("nan"),
            "pseudo_area": area(pseudo),
            "reg_area": area(reg),
            "gt_area": area(self.gt),
            "pseudo_loc50": float(np.mean(iou(pseudo, self.gt) >= 0.5)),
            "reg_loc50": float(np.mean(iou(reg, self.gt) >= 0.5)),
        }
        for k in ("smt_loss", "vst_loss", "reg_loss", "cls_loss", "accuracy"):
            if k in logs:
                row[k] = float(logs[k])
        self.rows.append({k: round(v, 4) for k, v in row.items()})
        print(" ", json.dumps(self.rows[-1]), flush=True)

    def on_train_begin(self, logs=None):
        self.stats()

    def on_epoch_end(self, epoch, logs=None):
        self.stats(logs)


def val_arrays(source, size):
    els = list(source.dataset("val").batch(256).as_numpy_iterator())
    images = np.concatenate([e["image"] for e in els]).astype(np.float32)
    boxes = np.concatenate([e["boxes"][:, 0] for e in els])  # one box per image
    assert images.shape[1] == size, images.shape
    return images, np.floor(boxes + 1e-6)


def config_for(root, variant, args):
    from wsol_keras.configs import synthetic_slt

    method, other = VARIANTS[variant]
    c = synthetic_slt.get_config()
    c.data.name = "cub"
    c.data.root = root
    c.data.image_size = args.image_size
    c.data.val_per_class = args.val_per_class
    c.train.epochs = args.epochs
    c.train.precise_bn_batches = 0
    for k, v in {**method, **other}.items():
        setattr(c.method, k, v)
    return c


def run(root, variant, args):
    config = config_for(root, variant, args)
    keras.utils.set_random_seed(config.seed)
    source = data_lib.get_source(config.data)
    info = trainer.data_info_of(source, config)
    steps = source.num_examples("train") // config.train.batch_size
    model = trainer.build_compiled_model(config, info, steps)
    method_phases.prepare(model, config, info)
    images, boxes = val_arrays(source, args.image_size)
    trace = Trace(images, boxes, args.image_size)
    t0 = time.time()
    print(f"{variant}: {dict(VARIANTS[variant][0])}", flush=True)
    model.fit(
        trainer.make_train_dataset(source, config, config.train.batch_size),
        epochs=config.train.epochs,
        steps_per_epoch=steps,
        callbacks=[trace],
        verbose=0,
    )
    return {"seconds": round(time.time() - t0, 1), "trace": trace.rows}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--variants", default="paper,k1_ce,vst_off")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--num_groups", type=int, default=2)
    p.add_argument("--classes_per_group", type=int, default=4)
    p.add_argument("--per_class", type=int, default=90, help="train + val images per class")
    p.add_argument("--val_per_class", type=int, default=10)
    p.add_argument("--file_size", type=int, default=96)
    p.add_argument("--image_size", type=int, default=64)
    p.add_argument("--seed", type=int, default=7, help="data seed")
    p.add_argument("--root", default="", help="existing or new CUB-layout folder")
    args = p.parse_args(argv)
    root = args.root or os.path.join(tempfile.mkdtemp(prefix="slt_diag_"), "CUB")
    if not os.path.exists(os.path.join(root, "images.txt")):
        render(root, args.num_groups, args.classes_per_group, args.per_class,
               args.file_size, args.seed)
    results = {}
    for v in args.variants.split(","):
        results[v] = run(root, v, args)
    summary = {
        v: {k: r["trace"][-1][k] for k in ("map_mean", "frac_above", "pseudo_area",
                                           "reg_area", "pseudo_loc50", "reg_loc50")}
        for v, r in results.items()
    }
    print(json.dumps({"args": vars(args), "final": summary,
                      "results": results}))


if __name__ == "__main__":
    sys.exit(main())
