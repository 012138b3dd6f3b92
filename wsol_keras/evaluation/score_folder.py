r"""wsol-score: scores a folder of heat maps from any code base (no model, no workdir).

    wsol-score --config=configs/cub_vgg16_cam.py --config.data.root=CUB \
        --scoremap_root=out/scoremaps --split=test --output=scores/

The mode of wsolevaluation's ``evaluation.py`` (Choe et al., "Evaluating Weakly
Supervised Object Localization Methods Right", CVPR 2020): one map per image
at ``<scoremap_root>/<image_id>.npy`` (``image_id`` as the data source names
it, e.g. the image path relative to the image root), scored against the data
source of ``--config`` with the evaluator's own code (`wsol_keras.evaluation.evaluator`):
MaxBoxAcc, MaxBoxAccV2, GT-known Loc at one CAM threshold, PxAP where masks
exist, pointing game and CorLoc; the same table and ``metrics.json``. There is
no classifier, so Top-1/Top-5 classification and Loc are not reported.

Map size: a map of the evaluation size S x S (``config.data.image_size``) is
used as it is and must lie in [0, 1] (wsolevaluation's
``check_scoremap_validity``); a map of any other size is resized to S x S with
``cv2.resize(..., INTER_CUBIC)`` and min-max normalized, the step wsolevaluation's
``inference.py`` applies to a raw CAM before it saves and scores it.

CAM threshold of GT-known Loc: ``--cam_threshold`` / ``config.eval.cam_threshold``,
else chosen on the val split as wsol-eval does when its maps are in the folder,
else 0.2 (the CAM paper's) with a warning.
"""

import os
import stat

from absl import flags
from absl import logging
import cv2
import numpy as np

from wsol_keras import cli
from wsol_keras import cli_flags
from wsol_keras.localization import boxes as boxes_lib
from wsol_keras import data as data_lib
from wsol_keras.evaluation import evaluator as evaluate
from wsol_keras.localization import maps as localization
from wsol_keras.evaluation import report
from wsol_keras.training import workdir as workdir_lib
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def read_map_file(path):
    """A .npy map as a finite real [H, W] array, or ValueError naming `path`.

    Refuses (one line each) what np.load gives no clear answer for: a file that
    is not regular (a named pipe would block), a truncated or non-.npy file,
    dtypes that are not real numbers (str, structured, datetime, complex: the
    imaginary part would be dropped), non-finite values and float64 values
    beyond float32's range (they would become inf in the float32 map).
    """
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise ValueError(f"{path}: not a regular file")
    try:
        scoremap = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        first = (str(e).splitlines() or [type(e).__name__])[0]
        raise ValueError(f"{path}: not a readable numpy .npy array ({first})") from None
    if not isinstance(scoremap, np.ndarray) or scoremap.dtype.kind not in "biuf":
        kind = getattr(scoremap, "dtype", type(scoremap))
        raise ValueError(f"{path}: dtype {kind} is not a real number type (bool, int, float)")
    if scoremap.ndim != 2 or min(scoremap.shape) < 1:
        raise ValueError(f"{path}: expected a 2-D [H, W] map, got shape {scoremap.shape}")
    if not np.isfinite(scoremap).all():
        raise ValueError(f"{path}: the map holds NaN or inf values")
    if scoremap.dtype.kind == "f" and np.abs(scoremap).max() > _FLOAT32_MAX:
        raise ValueError(
            f"{path}: values up to {np.abs(scoremap).max():.3g} exceed float32's range"
        )
    return scoremap


def load_scoremap(root, image_id, size):
    """The map of `image_id` as float32 [S, S] in [0, 1] (module docstring)."""
    path = os.path.join(root, image_id + ".npy")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no score map for image {image_id!r}")
    scoremap = read_map_file(path)
    if scoremap.shape == (size, size):
        if scoremap.min() < 0 or scoremap.max() > 1:
            raise ValueError(
                f"{path}: values in [{scoremap.min():.3g}, {scoremap.max():.3g}]; "
                "an S x S map must lie in [0, 1] (min-max normalize it)"
            )
        return scoremap.astype(np.float32)
    resized = cv2.resize(
        scoremap.astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC
    )
    return boxes_lib.normalize_scoremap(resized).astype(np.float32)


def scoremap_results(root, size):
    """batch -> {"maps": [B, S, S]} from files (`evaluate.evaluate_model`'s results_fn)."""

    def results_fn(batch):
        ids = [i.decode() for i in batch["image_id"].numpy()]
        return {"maps": np.stack([load_scoremap(root, i, size) for i in ids])}

    return results_fn


def _split_ids(source, split, max_images):
    ds = source.dataset(split).map(lambda e: e["image_id"])
    if max_images:
        ds = ds.take(int(max_images))
    return [i.decode() for i in ds.as_numpy_iterator()]


def score(scoremap_root, source, config, split="test"):
    """Scores the maps of `split`; returns wsol-eval's metrics dict (with curves)."""
    if not os.path.isdir(scoremap_root):
        raise FileNotFoundError(f"--scoremap_root={scoremap_root}: not a folder")
    if config.eval.cam_threshold is None:
        val = "val" if "val" in source.splits else "train"
        ids = _split_ids(source, val, config.eval.max_images)
        missing = [i for i in ids if not os.path.exists(
            os.path.join(scoremap_root, i + ".npy"))]
        if missing:
            logging.warning(
                "%d of %d %s maps are missing (e.g. %s.npy); GT-known Loc uses CAM "
                "threshold %.2f (set --cam_threshold to choose)",
                len(missing), len(ids), val, missing[0],
                localization.FALLBACK_CAM_THRESHOLD,
            )
            with config.unlocked():
                config.eval.cam_threshold = localization.FALLBACK_CAM_THRESHOLD
    results_fn = scoremap_results(scoremap_root, int(config.data.image_size))
    metrics = evaluate.evaluate_model(None, source, config, split, results_fn=results_fn)
    metrics["map_method"] = "scoremaps"
    metrics["scoremap_root"] = os.path.abspath(scoremap_root)
    metrics["split"] = split
    return metrics


FLAGS = flags.FLAGS


define_flags = cli_flags.score_flags


def main(argv):
    del argv
    config = FLAGS.config
    with config.unlocked():
        for field in ("cam_threshold", "max_images"):
            if getattr(FLAGS, field) is not None:
                config.eval[field] = getattr(FLAGS, field)
    out = FLAGS.output
    # Bad input raises; cli.guarded prints one line and exits 1.
    if out and os.path.exists(os.path.join(out, "metrics.json")) and not FLAGS.overwrite:
        raise FileExistsError(
            f"{os.path.join(out, 'metrics.json')} exists; pass --overwrite"
        )
    source = data_lib.get_source(config.data)
    metrics = score(FLAGS.scoremap_root, source, config, FLAGS.split)
    curves, thresholds = metrics.pop("_curves"), metrics.pop("_thresholds")
    if out:
        workdir_lib.write_json_atomic(os.path.join(out, "metrics.json"), metrics)
        report.plot_box_accuracy(
            os.path.join(out, "box_accuracy.png"), thresholds, curves,
            metrics["cam_threshold"],
        )
    print(f"split {FLAGS.split}, score maps {metrics['scoremap_root']}")
    print(report.format_table(metrics))


def run_main():
    cli.run(main, define_flags, __doc__, "wsol-score", config_flag=True)


if __name__ == "__main__":
    run_main()
