r"""Evaluates a trained workdir: the field's localization metrics and a report.

    wsol-eval --workdir=runs/demo                 # -> runs/demo/eval/test-<map>/
    wsol-eval --workdir=runs/demo --map_method=dgl --dgl_layer=backbone/...

Each evaluation writes its own record folder ``W/eval/<split>-<map_method>
[-<layer>]...`` (metrics.json with split, map method, layer, threshold and
how it was chosen, image counts, weights sha256; heatmaps.png;
box_accuracy.png), see `wsol_keras.evaluation.records`; the training report
(``W/metrics.json``) is never overwritten.

Protocol (wsolevaluation, Choe et al. CVPR 2020):
    * maps of the ground-truth class (GT-known) or of the top-K predicted
        classes (`map_method=topk`, SLT-Net Eq. 9), upsampled to the image size
        and min-max normalized per image;
    * MaxBoxAcc: best box accuracy over CAM thresholds at IoU 0.5, box of the
        largest contour; MaxBoxAccV2: mean over IoU 0.3/0.5/0.7, every contour;
        PxAP when masks exist;
    * Top-1 / Top-5 / GT-known Loc at one CAM threshold: chosen on the val
        split by box accuracy (or `config.eval.cam_threshold`), saved as
        `cam_threshold`;
    * pointing game (SPN Sec. 4.2) and CorLoc.
Models that output boxes directly (SLT-Net's regressor) get their Loc
metrics from those boxes, while MaxBoxAcc / PxAP still measure their maps.
Whole-image localization is flagged, not published silently: metrics.json
records the Loc boxes' mean area, the share of whole-image boxes and the maps'
coverage at the Loc threshold, and ``localization_collapsed`` with a warning
when most Loc boxes cover the image and the objects do not
(`wsol_keras.evaluation.coverage`).
The papers' own protocols (ten-crop classification, maps and boxes at the
original image size, SPN's and DANet's boxes, Object Energy) are
``config.eval`` options, see `wsol_keras.evaluation.protocol`. A multi-label
(VOC / COCO) workdir gets SPN's multi-label protocol instead
(`wsol_keras.evaluation.multilabel`: pointing game, CorLoc, mAP).
"""

import os

from absl import flags
from absl import logging
import numpy as np
import tensorflow as tf

from wsol_keras import cli
from wsol_keras import cli_flags
from wsol_keras.training import config_checks
from wsol_keras import data as data_lib
from wsol_keras.evaluation import layer_sweep
from wsol_keras.evaluation import passes as eval_passes
from wsol_keras.evaluation import protocol as eval_protocol
from wsol_keras.evaluation import records
from wsol_keras.localization import layer_paths
from wsol_keras.localization import maps as localization
from wsol_keras.evaluation import metrics as metrics_lib
from wsol_keras.evaluation import multilabel
from wsol_keras.evaluation import report
from wsol_keras.training import workdir as workdir_lib
from wsol_keras.training import workdir_lock
def make_map_fn(model, config):
    """Returns a tf.function (images, labels) -> dict of per-batch results.

    The dict holds "logits" [B, C], "maps" [B, S, S] in [0, 1] (of the
    ground-truth classes `labels`, see `wsol_keras.localization.maps`), "raw_maps"
    [B, h, w] (before upsampling), SPN's "proposal" [B, h, w] when the model
    has one, and, for box regressors, "boxes" [B, 4] normalized xyxy.
    """
    localizer = localization.Localizer.from_config(model, config)

    @tf.function(reduce_retracing=True)
    def map_fn(images, labels):
        result = localizer(images, class_ids=labels)
        out = {k: result[k] for k in ("logits", "maps", "raw_maps", "boxes") if k in result}
        if "proposal" in result["outputs"]:
            out["proposal"] = tf.cast(result["outputs"]["proposal"], tf.float32)
        return out

    return map_fn


def batch_results(map_fn):
    """A `make_map_fn` function -> batch -> numpy results (what `iterate` calls).

    `wsol_keras.evaluation.score_folder` passes its own batch -> results function instead
    (score maps read from files, no model).
    """

    def results_fn(batch):
        images = tf.cast(batch["image"], tf.float32)
        return {k: v.numpy() for k, v in map_fn(images, batch["label"]).items()}

    return results_fn


def _results_fn(model, config, results_fn):
    if results_fn is not None:
        if eval_protocol.option(config, "ten_crop"):
            raise ValueError("config.eval.ten_crop needs a model, not score maps")
        return results_fn
    map_fn = make_map_fn(model, config)
    results_fn = batch_results(map_fn)
    if eval_protocol.option(config, "ten_crop"):
        return eval_protocol.ten_crop_results(map_fn, results_fn, config)
    return results_fn


def evaluate_model(model, source, config, split="test", on_batch=None, results_fn=None):
    """Runs the whole protocol; returns the metrics dict (percent).

    `results_fn` (batch -> numpy "maps" and optionally "logits"/"boxes")
    replaces the model (`model` may then be None). Without "logits" the
    classification metrics and Top-1/5 Loc are left out (GT-known only).
    The protocol options (`wsol_keras.evaluation.protocol`) come from ``config.eval``.
    """
    config_checks.check_config(config)
    eval_protocol.check_config(config)
    results_fn = _results_fn(model, config, results_fn)
    threshold, threshold_info = eval_passes.choose_cam_threshold(results_fn, source, config)
    box_metrics = eval_protocol.BoxMetrics(
        config, threshold_info["box_threshold"], source.num_classes
    )
    pxap = metrics_lib.PxAP(cam_thresholds=eval_protocol.cam_thresholds(config))
    pointing = metrics_lib.PointingGame(tolerance=config.eval.pointing_tolerance)
    top1 = top5 = count = boxed = 0
    has_masks = False
    classified = True
    for batch, results in eval_passes.iterate(
        results_fn, source, split, config.eval.batch_size, config.eval.max_images,
        desc=split, config=config,
    ):
        labels = batch["label"].numpy()
        maps = results["maps"]
        if "logits" in results:
            logits = results["logits"]
            top1_ok = metrics_lib.top_k_correct(logits, labels, 1)
            top5_ok = metrics_lib.top_k_correct(logits, labels, min(5, logits.shape[1]))
        else:  # score maps without a classifier: GT-known metrics only
            classified = False
            top1_ok = top5_ok = np.ones(len(labels), bool)
        top1 += int(top1_ok.sum())
        top5 += int(top5_ok.sum())
        count += len(labels)
        mask_rows = batch["has_mask"].numpy()
        if mask_rows.any():  # masks come at S x S: PxAP of the S x S maps
            has_masks = True
            pxap.update(maps[mask_rows], batch["mask"].numpy()[mask_rows])
        # Box metrics only where boxes exist (OpenImages-style data has masks only).
        rows = eval_passes.boxed_rows(batch)
        boxed += int(rows.sum())
        if not rows.any():
            continue
        # SPN Sec. 4.2: per-class hit rate, tolerance in original-image pixels.
        gt = [b[:n] for b, n in zip(batch["boxes"].numpy(), batch["num_boxes"].numpy())]
        pointing.update(
            maps[rows],
            [g for g, r in zip(gt, rows) if r],
            class_ids=labels[rows],
            original_sizes=(
                batch["original_size"].numpy()[rows] if "original_size" in batch else None
            ),
        )
        box_metrics.update(
            eval_protocol.views(batch, results, rows, config),
            top1_ok[rows],
            top5_ok[rows],
            labels[rows],
        )
        if on_batch is not None:  # the report's grid: the Loc box and its threshold
            on_batch(batch, results, threshold_info["box_threshold"])
    if count == 0:
        raise ValueError(f"split {split!r} of {config.data.name!r} has no images")
    metrics = {
        "top1_cls": 100.0 * top1 / count,
        "top5_cls": 100.0 * top5 / count,
        "cam_threshold": threshold,
        "num_images": count,
        # Images without a box are left out of the localization metrics.
        "num_images_with_boxes": boxed,
        "map_method": config.eval.map_method,
        **threshold_info,
        **eval_protocol.describe(config),
    }
    if boxed:
        metrics.update(box_metrics.result())
        metrics.update(pointing.result())
        if metrics.get("localization_collapsed"):
            logging.warning("%s: %s", split, metrics["localization_warning"])
    if has_masks:
        metrics.update(pxap.result())
    if not classified:
        for key in ("top1_cls", "top5_cls", "top1_loc", "top5_loc"):
            metrics.pop(key, None)
    curves = box_metrics.curves() if boxed else {}
    metrics["_curves"] = {str(k): np.asarray(v).tolist() for k, v in curves.items()}
    metrics["_thresholds"] = eval_protocol.cam_thresholds(config).tolist()
    return metrics


class _Report:
    """One evaluation's record and figures, written to any folder."""

    def __init__(self, model, source, config, workdir, split, max_images_override):
        self.collector = report.ExampleCollector(
            config.eval.num_visualize,
            source.class_names,
            title=report.grid_title(split, config),
            box_fn=eval_protocol.box_fn(config),
        )
        metrics = evaluate_model(model, source, config, split, on_batch=self.collector)
        self.curves = metrics.pop("_curves")
        self.thresholds = metrics.pop("_thresholds")
        weights_hash, weights_path = records.weights_of(workdir)
        metrics.update(
            records.provenance(
                split,
                config,
                max_images_override,
                weights_hash,
                weights_path,
            )
        )
        self.metrics = metrics

    def write(self, directory):
        workdir_lib.write_json_atomic(
            os.path.join(directory, records.RECORD_FILE), self.metrics
        )
        report.plot_box_accuracy(
            os.path.join(directory, "box_accuracy.png"),
            self.thresholds,
            self.curves,
            self.metrics["cam_threshold"],
        )
        self.collector.save(os.path.join(directory, "heatmaps.png"))


def evaluate_and_report(model, source, config, workdir, split="test"):
    """wsol-train's report: W/metrics.json, heatmaps.png, box_accuracy.png.

    The same record also goes to W/eval/<key>/ (`eval_records`), where
    exports look for it. Returns the metrics record.
    """
    directory = records.record_dir(
        workdir, records.record_key(split, config)
    )
    records.check_writable(directory)
    result = _Report(model, source, config, workdir, split, None)
    result.write(directory)
    result.write(workdir)
    return result.metrics


def evaluate_and_record(
    model, source, config, workdir, split="test", max_images=None, show=print
):
    """wsol-eval: one evaluation into W/eval/<key>/; the training report stays.

    Checks that the record folder is writable before evaluating, and shows
    the metrics table (`show`) before writing anything.

    Args:
        max_images: a ``--max_images`` override already set in
            ``config.eval`` (it makes a scratch record of its own key).

    Returns:
        (metrics record, record folder).
    """
    directory = records.record_dir(
        workdir, records.record_key(split, config, max_images)
    )
    records.check_writable(directory)
    result = _Report(model, source, config, workdir, split, max_images)
    show(report.format_table(result.metrics))
    result.write(directory)
    return result.metrics, directory


FLAGS = flags.FLAGS


define_flags = cli_flags.eval_flags


def _apply_flags(config):
    with config.unlocked():
        for field in ("map_method", "dgl_layer", "cam_threshold", "max_images",
                      "box_method", "image_size_mode", "ten_crop", "scorecam_channels"):
            value = getattr(FLAGS, field)
            if value is not None:
                config.eval[field] = value
    return config


def main(argv):
    del argv
    if FLAGS.print_config:  # no model needed
        cli.print_config(_apply_flags(workdir_lib.read_config(FLAGS.workdir)[0]))
        return
    workdir_lib.read_config(FLAGS.workdir)  # a missing workdir: its own error
    with workdir_lock.directory_lock(FLAGS.workdir, "wsol-eval"):
        _evaluate_workdir()


def _evaluate_workdir():
    model, config, _ = workdir_lib.load_model(FLAGS.workdir)
    _apply_flags(config)
    if FLAGS.list_layers:
        print(layer_paths.format_layer_paths(model))
        return
    source = data_lib.get_source(config.data)
    if getattr(source, "multi_label", False):
        if FLAGS.sweep_layers:
            raise ValueError("--sweep_layers: single-label data only (this workdir is multi-label)")
        _evaluate_multilabel(model, source, config)
        return
    if FLAGS.sweep_layers:
        method = (
            FLAGS.map_method
            if FLAGS.map_method in localization.GRADIENT_MAP_METHODS
            else "dgl"
        )
        results = layer_sweep.layer_sweep(
            model,
            source,
            FLAGS.sweep_layers,
            split=FLAGS.split,
            method=method,
            batch_size=config.eval.batch_size,
            max_images=FLAGS.max_images,
            scorecam_channels=config.eval.get(
                "scorecam_channels", localization.cam_family.SCORECAM_DEFAULT_CHANNELS
            ),
        )
        workdir_lib.write_json_atomic(
            os.path.join(FLAGS.workdir, "dgl_sweep.json"), results
        )
        print(f"{method} layer sweep, {FLAGS.split} split:")
        print(layer_sweep.format_sweep_table(results))
        return
    print(report.table_heading(FLAGS.split, config))
    _, directory = evaluate_and_record(
        model, source, config, FLAGS.workdir, FLAGS.split, FLAGS.max_images
    )
    print(
        f"Report written to {os.path.abspath(directory)}/ "
        f"(the training report in {FLAGS.workdir} is unchanged)"
    )


def _evaluate_multilabel(model, source, config):
    """VOC / COCO workdirs: SPN's protocol (SPN Sec. 4.2-4.4), as wsol-train
    runs it, into ``W/eval/<key>/spn_protocol.json``."""
    key = records.record_key(FLAGS.split, config, FLAGS.max_images)
    directory = records.record_dir(FLAGS.workdir, key)
    records.check_writable(directory)
    print(report.table_heading(FLAGS.split, config, "SPN multi-label protocol"))
    result = multilabel.evaluate_and_report(
        model, source, config, directory, split=FLAGS.split
    )
    print(multilabel.format_table(result))
    print(f"Report written to {os.path.abspath(directory)}/spn_protocol.json")


def run_main():
    cli.run(main, define_flags, __doc__, "wsol-eval")


if __name__ == "__main__":
    run_main()
