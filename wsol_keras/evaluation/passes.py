"""Passes over a split for the evaluator (`wsol_keras.evaluation.evaluator`).

`iterate` runs a batch -> results function over a split (the protocol's
elements, `wsol_keras.evaluation.protocol.dataset`); `choose_cam_threshold` is the
val pass of wsolevaluation (Choe et al., "Evaluating Weakly Supervised Object
Localization Methods Right", CVPR 2020, Sec. 5: the CAM threshold chosen on
held-out boxes), plus the threshold of DANet's union box when that box is used.
"""

from absl import logging
import keras

from wsol_keras.evaluation import protocol as eval_protocol
from wsol_keras.evaluation import records
from wsol_keras.localization import maps
from wsol_keras.evaluation import metrics as metrics_lib
from wsol_keras.evaluation import paper_protocols
def iterate(results_fn, source, split, batch_size, max_images=None, desc=None, config=None):
    """Yields (batch, results) numpy dicts over a split, with a progress bar.

    With `config`, the elements are `eval_protocol.dataset`'s (ten-crop copies).
    """
    n = source.num_examples(split)
    if max_images:
        n = min(n, int(max_images))
    ds = source.dataset(split) if config is None else eval_protocol.dataset(source, split, config)
    ds = ds.take(n).batch(batch_size)
    bar = keras.utils.Progbar(n, unit_name="image", verbose=1 if desc else 0)
    if desc:
        logging.info("%s: %d images", desc, n)
    for batch in ds:
        results = results_fn(batch)
        bar.add(int(batch["label"].shape[0]))
        yield batch, results


def boxed_rows(batch):
    """bool [B]: the images of a batch with at least one box."""
    return batch["num_boxes"].numpy() > 0


def choose_cam_threshold(results_fn, source, config):
    """Box accuracy at IoU 0.5 (largest contour) on val; returns its argmax.

    With ``eval.box_method="danet_union"`` the same pass also chooses the
    union box's threshold among DANet's sweep (``box_threshold``).

    Returns:
        (threshold, info): info holds ``cam_threshold_source`` (
        `records.VAL_SEARCH`, `FIXED` or `FALLBACK`), ``threshold_split``,
        ``threshold_search_images`` (images with boxes searched on) and
        ``box_threshold`` (the Loc box's threshold).
    """
    union = eval_protocol.option(config, "box_method") == "danet_union"
    if config.eval.cam_threshold is not None:
        fixed = float(config.eval.cam_threshold)
        return fixed, {
            "cam_threshold_source": records.FIXED,
            "threshold_split": None,
            "threshold_search_images": 0,
            "box_threshold": fixed,
        }
    split = "val" if "val" in source.splits else "train"
    acc = metrics_lib.BoxAccuracy(
        cam_thresholds=eval_protocol.cam_thresholds(config), iou_thresholds=(50,), multi_contour=False
    )
    sweep = paper_protocols.UnionBoxSweep()
    seen = 0
    for batch, results in iterate(
        results_fn, source, split, config.eval.batch_size, config.eval.max_images,
        desc=f"{split} (choosing the CAM threshold)", config=config,
    ):
        batch_views = eval_protocol.views(batch, results, boxed_rows(batch), config)
        stack = eval_protocol.stacked_scoremaps(batch_views)
        if stack is not None:  # one shape (image_size_mode="fixed"): one stacked update
            acc.update(stack, [view.gt for view in batch_views])
        for view in batch_views:
            if stack is None:
                acc.update(view.scoremap[None], [view.gt])
            if union:
                sweep.update(view.scoremap, view.gt)
            seen += 1
    info = {"threshold_split": split, "threshold_search_images": seen}
    if not seen:
        logging.warning(
            "no boxes in the %s split to choose the CAM threshold; using %.2f "
            "(the CAM paper's)",
            split,
            maps.FALLBACK_CAM_THRESHOLD,
        )
        info["cam_threshold_source"] = records.FALLBACK
        info["box_threshold"] = maps.FALLBACK_CAM_THRESHOLD
        return maps.FALLBACK_CAM_THRESHOLD, info
    info["cam_threshold_source"] = records.VAL_SEARCH
    threshold = float(acc.result()["best_threshold_iou50"])
    info["box_threshold"] = threshold
    if union:  # first of the best, as DANet's sweep prints them in order
        accs = sweep.result()
        info["box_threshold"] = float(max(accs, key=lambda t: (accs[t], -float(t))))
    return threshold, info
