r"""What each method's mechanism does on the benchmark's object masks.

Given trained workdirs (``wsol-train --config=configs/synthetic_<method>.py``,
``:finetune`` or not), measures on a split with object masks (the synthetic
benchmark) the figure each paper's argument rests on, so that a method that
does not beat CAM gets a diagnosis rather than a guess:

* ``--cam``: the coverage of CAM's map (the baseline every method claims to
  widen) and the DGL layer sweep (Tan et al., ACM MM 2020, Table 1):
  GT-known Loc / MaxBoxAccV2 of each backbone layer's DGL map
  (`wsol_keras.evaluation.layer_sweep`).
* ``--acol`` (Zhang et al., CVPR 2018, Sec. 3.1-3.2): classifier B's strongest
  region (its normalized map of the class A erased, >= delta) against the
  region erased from A's features (``b_region_inside_erased``, ``iou``: low
  when B finds complementary parts), and the object coverage of the fused map
  max(A, B) against A's map alone and B's.
* ``--danet`` (Xue et al., ICCV 2019): the coverage of each hierarchy level's
  map (ground-truth class of that level) and of the fused map, and the mean
  cosine similarity of the K maps of the ground-truth class (the quantity the
  discrepancy loss, Eq. 4, lowers); ``--danet_lambda0`` (the same config
  trained with ``--config.method.dda_weight=0``) gives the same side by side.
* ``--spn`` (Zhu et al., ICCV 2017, Sec. 3): Object Energy of the proposal
  map M on the object mask (share of M's mass inside the object) against the
  object's area fraction (a uniform M's energy), and of the class map R_c.
* ``--slt`` (Guo et al., CVPR 2022): coverage of the localizer's top-K ACAM
  (Eq. 9, K of the workdir's training), the localizer's own top-1 / top-K
  accuracy; ``--slt_k1`` (trained with ``--config.method.k=1
  --config.eval.topk=1``) side by side.
Every workdir also gets the coverage of the map its evaluation scores
(``config.eval.map_method``, ground-truth class).

Coverage figures (`wsol_keras.evaluation.mask_coverage`, percent, mean over
images): ``object_covered`` (share of the object mask where the min-max
normalized map >= ``--threshold``), ``outside_object`` (share of that region
outside the object), ``region_area`` and ``object_area`` (shares of the
image), ``mass_inside`` (share of the normalized map's mass inside the
object; for SPN's proposal M the raw M's, rescaled bilinearly as SPN Sec. 4.1
does: its Object Energy).

    PYTHONPATH=$PWD nice -n 5 python bench/mechanism_diagnostics.py \
        --cam=runs/cam --acol=runs/acol --spn=runs/spn --danet=runs/danet \
        --danet_lambda0=runs/danet_l0 --slt=runs/slt --slt_k1=runs/slt_k1 \
        --split=val --max_images=300

The last line is JSON.
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from wsol_keras import data as data_lib  # noqa: E402
from wsol_keras.evaluation import layer_sweep  # noqa: E402
from wsol_keras.evaluation.mask_coverage import MaskCoverage, region_overlap  # noqa: E402
from wsol_keras.layers.divergent_activation import localization_maps  # noqa: E402
from wsol_keras.localization import layer_paths  # noqa: E402
from wsol_keras.localization import maps as maps_lib  # noqa: E402
from wsol_keras.localization.primitives import (  # noqa: E402
    normalize_maps,
    select_class_maps,
    top1_class_ids,
    upsample_maps,
)
from wsol_keras.losses.discrepancy import pairwise_cosine_similarity  # noqa: E402
from wsol_keras.training import workdir as workdir_lib  # noqa: E402

# The region threshold: the CAM paper's 20% of the max, SLT-Net's pseudo-box
# threshold on the synthetic benchmark.
DEFAULT_THRESHOLD = maps_lib.FALLBACK_CAM_THRESHOLD


class Run:
    """A trained workdir: model, config, data source and map helpers."""

    def __init__(self, flag, workdir, method, args):
        self.flag, self.workdir = flag, workdir
        self.model, self.config, _ = workdir_lib.load_model(workdir)
        trained = self.config.method.name
        if trained != method:
            raise ValueError(
                f"--{flag}={workdir}: the workdir trains {trained!r}, "
                f"--{flag} takes a {method!r} workdir"
            )
        self.source = data_lib.get_source(self.config.data)
        if args.split not in self.source.splits:
            raise ValueError(
                f"--split={args.split}: {workdir}'s data has splits {list(self.source.splits)}"
            )
        self.size = int(self.config.data.image_size)
        self.upsample = self.config.eval.get("upsample", "cv2_bicubic")
        self.split, self.max_images = args.split, args.max_images

    def batches(self):
        """Numpy batches of the split with masks; refuses data without them."""
        n = self.source.num_examples(self.split)
        if self.max_images:
            n = min(n, int(self.max_images))
        batch_size = int(self.config.eval.batch_size)
        for batch in self.source.dataset(self.split).take(n).batch(batch_size):
            b = {k: v.numpy() for k, v in batch.items() if k != "image_id"}
            if not b["has_mask"].all():
                raise ValueError(
                    f"--{self.flag}={self.workdir}: the {self.split} split of "
                    f"{self.config.data.name!r} has images without an object mask "
                    "(the diagnostics need masks: the synthetic benchmark has them)"
                )
            b["image"] = tf.cast(batch["image"], tf.float32)
            yield b

    def finish(self, raw):
        """[B, h, w] raw maps -> [B, S, S] in [0, 1], the evaluator's map path."""
        return np.asarray(maps_lib.finish_maps(raw, self.size, self.upsample))

    def energy(self, raw):
        """[B, h, w] raw maps -> [B, S, S] bilinear (SPN Sec. 4.1's rescale)."""
        return np.asarray(upsample_maps(tf.cast(raw, tf.float32), self.size, "bilinear"))

    def cover(self, acc, raw, masks, raw_mass=False):
        """Coverage of a raw map; its mass is the normalized map's, or with
        `raw_mass` the raw map's (SPN's proposal M, a distribution)."""
        maps = self.finish(raw)
        acc.update(maps, masks, self.energy(raw) if raw_mass else None)

    def describe(self):
        return {"workdir": self.workdir, "data": self.config.data.name,
                "image_size": self.size, "map_method": self.config.eval.map_method}


def same_data(a, b):
    if a.config.data.to_dict() != b.config.data.to_dict():
        raise ValueError(
            f"--{b.flag}={b.workdir} and --{a.flag}={a.workdir} were trained on "
            "different data configs: their figures would not compare"
        )


def evaluated_map(run, threshold):
    """Coverage of the map the workdir's evaluation scores (GT class)."""
    localizer = maps_lib.Localizer.from_config(run.model, run.config)
    acc = MaskCoverage(threshold)
    for b in run.batches():
        result = localizer(b["image"], class_ids=b["label"])
        acc.update(np.asarray(result["maps"]), b["mask"])
    return acc.result()


def default_sweep_layers(model):
    """The backbone's activation / pooling outputs (its convs if it has none)."""
    paths = [p for p in layer_paths.layer_paths(model)
             if p.dgl and p.path.startswith("backbone/")]
    act = [p.path for p in paths if not p.kind.startswith("Conv")]
    return act or [p.path for p in paths]


def diagnose_cam(run, args):
    layers = args.sweep_layers.split(",") if args.sweep_layers else default_sweep_layers(run.model)
    sweep = layer_sweep.layer_sweep(
        run.model, run.source, layers, split=args.split, method=args.sweep_method,
        batch_size=int(run.config.eval.batch_size), max_images=args.max_images,
    )
    print(f"{args.sweep_method} layer sweep ({run.workdir}, {args.split}):")
    print(layer_sweep.format_sweep_table(sweep))
    return {"layer_sweep": sweep}


def diagnose_acol(run, args):
    m = run.model
    accs = {k: MaskCoverage(args.threshold) for k in ("fused", "a", "b")}
    inside, iou, erased_area, b_area = [], [], [], []
    for b in run.batches():
        out = m(b["image"], training=False)
        features = m.pooled_features(m.backbone(b["image"], training=False))
        # The region B does not see: A's top-1 map >= delta (Sec. 3.2, test time).
        keep = np.asarray(m.erase.erase_mask(features, out["cams_a"], None, training=False))
        erased = keep < 0.5
        class_ids = top1_class_ids(out["logits"])
        b_map = np.asarray(normalize_maps(select_class_maps(out["cams_b"], class_ids)))
        b_region = b_map >= m.erase.delta
        o = region_overlap(b_region, erased)
        inside.append(o["inside"])
        iou.append(o["iou"])
        erased_area.append(erased.mean(axis=(1, 2)))
        b_area.append(b_region.mean(axis=(1, 2)))
        for k, key in (("fused", "cams"), ("a", "cams_a"), ("b", "cams_b")):
            run.cover(accs[k], select_class_maps(out[key], b["label"]), b["mask"])

    def pct(parts):
        v = np.concatenate(parts)
        return 100.0 * float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")

    return {
        "delta": m.erase.delta,
        "b_region_inside_erased": pct(inside),
        "b_region_erased_iou": pct(iou),
        "erased_area": pct(erased_area),
        "b_region_area": pct(b_area),
        "coverage": {k: a.result() for k, a in accs.items()},
    }


def _k_map_similarity(level_maps, class_ids):
    """Mean cosine similarity of the K maps of each image's class (DANet Eq. 4)."""
    maps = np.asarray(level_maps)  # [B, h, w, C, K]
    idx = np.asarray(class_ids).reshape(-1, 1, 1, 1, 1)
    chosen = np.take_along_axis(maps, idx, axis=3)[:, :, :, 0, :]  # [B, h, w, K]
    k = chosen.shape[-1]
    if k < 2:
        return np.full(len(chosen), np.nan)
    sim = np.asarray(pairwise_cosine_similarity(chosen))
    off = ~np.eye(k, dtype=bool)
    return sim[:, off].mean(axis=1)


def diagnose_danet(run, args):
    m = run.model
    levels = [MaskCoverage(args.threshold) for _ in range(m.num_levels)]
    fused = MaskCoverage(args.threshold)
    sims = [[] for _ in range(m.num_levels)]
    for b in run.batches():
        out = m(b["image"], training=False)
        for lvl in range(m.num_levels):
            ids = b["label"] if lvl == 0 else b["hierarchy"][:, lvl - 1]
            maps = out[f"maps_l{lvl}"]
            run.cover(levels[lvl], select_class_maps(localization_maps(maps), ids), b["mask"])
            sims[lvl].append(_k_map_similarity(maps, ids))
        run.cover(fused, select_class_maps(out["cams"], b["label"]), b["mask"])
    result = {"dda_weight": float(run.config.method.dda_weight), "fused": fused.result()}
    for lvl in range(m.num_levels):
        r = levels[lvl].result()
        r["k_map_cosine"] = float(np.nanmean(np.concatenate(sims[lvl])))
        result[f"level{lvl}"] = r
    return result


def diagnose_spn(run, args):
    accs = {k: MaskCoverage(args.threshold) for k in ("proposal", "class_map")}
    for b in run.batches():
        out = run.model(b["image"], training=False)
        run.cover(accs["proposal"], out["proposal"], b["mask"], raw_mass=True)
        run.cover(accs["class_map"], select_class_maps(out["cams"], b["label"]), b["mask"])
    result = {k: a.result() for k, a in accs.items()}
    p = result["proposal"]
    # Object Energy over a uniform map's (the object's area fraction).
    result["proposal_energy_over_uniform"] = p["mass_inside"] / p["object_area"]
    return result


def diagnose_slt(run, args):
    m = run.model
    localizer = maps_lib.Localizer(m, run.size, map_method="topk", topk=m.top_k,
                                   upsample=run.upsample)
    acc = MaskCoverage(args.threshold)
    top1 = topk = count = 0
    for b in run.batches():
        result = localizer(b["image"])
        acc.update(np.asarray(result["maps"]), b["mask"])
        ids = np.asarray(localizer.topk_class_ids(result["outputs"]))
        top1 += int(np.sum(ids[:, 0] == b["label"]))
        topk += int(np.sum(np.any(ids == b["label"][:, None], axis=1)))
        count += len(b["label"])
    return {"k": int(m.top_k), "localizer_top1": 100.0 * top1 / count,
            "localizer_topk": 100.0 * topk / count, "acam": acc.result()}


# flag -> (method the workdir must train, diagnosis, flag it is compared with)
PARTS = {
    "cam": ("cam", diagnose_cam, None),
    "acol": ("acol", diagnose_acol, None),
    "danet": ("danet", diagnose_danet, None),
    "danet_lambda0": ("danet", diagnose_danet, "danet"),
    "spn": ("spn", diagnose_spn, None),
    "slt": ("slt", diagnose_slt, None),
    "slt_k1": ("slt", diagnose_slt, "slt"),
}


def check_variant(flag, run):
    """The ablation workdirs are what their flags say."""
    if flag == "danet_lambda0" and float(run.config.method.dda_weight) != 0.0:
        raise ValueError(
            f"--danet_lambda0={run.workdir}: method.dda_weight="
            f"{run.config.method.dda_weight}, expected 0 (train it with "
            "--config.method.dda_weight=0)"
        )
    if flag == "slt_k1" and int(run.model.top_k) != 1:
        raise ValueError(
            f"--slt_k1={run.workdir}: the localizer's K is {run.model.top_k}, "
            "expected 1 (train it with --config.method.k=1)"
        )


def fmt(r, keys=("object_covered", "outside_object", "region_area", "object_area",
                 "mass_inside")):
    return "  ".join(f"{k} {r[k]:5.1f}" for k in keys if k in r)


def show(flag, r):
    """Plain-text lines of one part's figures."""
    if flag == "acol":
        print(f"acol: B's region (>= delta {r['delta']}) inside A's erased region "
              f"{r['b_region_inside_erased']:.1f}%, IoU {r['b_region_erased_iou']:.1f}%; "
              f"erased {r['erased_area']:.1f}% of the map, B's region {r['b_region_area']:.1f}%")
        for k, v in r["coverage"].items():
            print(f"  {k:6s} {fmt(v)}")
    elif flag.startswith("danet"):
        print(f"{flag} (dda_weight {r['dda_weight']}):")
        for k, v in r.items():
            if isinstance(v, dict) and k != "evaluated_map":
                extra = f"  k_map_cosine {v['k_map_cosine']:.3f}" if "k_map_cosine" in v else ""
                print(f"  {k:6s} {fmt(v)}{extra}")
    elif flag == "spn":
        print(f"spn: Object Energy of M {r['proposal']['mass_inside']:.1f}% vs uniform "
              f"{r['proposal']['object_area']:.1f}% "
              f"(x{r['proposal_energy_over_uniform']:.2f})")
        for k in ("proposal", "class_map"):
            print(f"  {k:9s} {fmt(r[k])}")
    elif flag.startswith("slt"):
        print(f"{flag}: top-{r['k']} ACAM {fmt(r['acam'])}; localizer top-1 "
              f"{r['localizer_top1']:.1f}%, top-{r['k']} {r['localizer_topk']:.1f}%")
    if "evaluated_map" in r:
        print(f"  {flag} evaluated map: {fmt(r['evaluated_map'])}")


def _json_safe(obj):
    """NaN (a figure no image defines) -> null: the last line stays strict JSON."""
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for flag in PARTS:
        p.add_argument(f"--{flag}", default="", help=f"a trained {PARTS[flag][0]} workdir")
    p.add_argument("--split", default="val")
    p.add_argument("--max_images", type=int, default=300)
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                   help="region threshold of the normalized maps")
    p.add_argument("--sweep_layers", default="",
                   help="comma-separated layer paths (default: the backbone's "
                        "activation and pooling layers)")
    p.add_argument("--sweep_method", default="dgl", choices=maps_lib.GRADIENT_MAP_METHODS)
    args = p.parse_args(argv)
    if not 0.0 <= args.threshold <= 1.0:
        p.error(f"--threshold={args.threshold}: not in [0, 1]")
    if not any(getattr(args, f) for f in PARTS):
        p.error(f"give at least one workdir: {', '.join('--' + f for f in PARTS)}")
    t0 = time.time()
    runs = {}
    for flag, (method, _, _) in PARTS.items():
        if getattr(args, flag):
            runs[flag] = Run(flag, getattr(args, flag), method, args)
            check_variant(flag, runs[flag])
    for flag, run in runs.items():
        base = PARTS[flag][2]
        if base in runs:
            same_data(runs[base], run)
    results = {}
    for flag, run in runs.items():
        r = {**run.describe(), **PARTS[flag][1](run, args)}
        r["evaluated_map"] = evaluated_map(run, args.threshold)
        show(flag, r)
        results[flag] = r
    print(json.dumps(_json_safe({"split": args.split, "max_images": args.max_images,
                      "threshold": args.threshold, "seconds": round(time.time() - t0, 1),
                      "parts": results})))


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (ValueError, FileNotFoundError) as e:  # bad flags or workdirs: one line
        sys.exit(f"{os.path.basename(__file__)}: error: {e}")
