"""DGL layer sweep: localization of many layers' maps in one pass.

Tan et al., "Dual-Gradients Localization Framework for Weakly Supervised
Object Localization", ACM MM 2020, Table 1 (GT-known Loc per layer of VGG16).
Maps come from `wsol_keras.localization.maps` (the evaluator's map path); boxes
and metrics from `wsol_keras.evaluation.metrics`. Lives outside `dual_gradient` because
`localization` builds on `dual_gradient` (no import circle).
"""

import numpy as np
import tensorflow as tf

from wsol_keras.localization import maps as localization
from wsol_keras.evaluation import metrics as metrics_lib
def layer_sweep(
    model,
    source,
    layer_names,
    split="test",
    method="dgl",
    alpha=10.0,
    batch_size=32,
    max_images=None,
    cam_threshold_step=0.01,
    iou_thresholds=(30, 50, 70),
    **kwargs,
):
    """Localization of several layers' maps in one pass (DGL Table 1).

    Every batch runs one `DualGradient` call for all layers (ground-truth
    class as target, i.e. GT-known) through `wsol_keras.localization.maps` (the
    evaluator's map path: upsampled to the image size, min-max normalized),
    and per layer:

    * ``gt_known_loc``: box accuracy at IoU 0.5 (largest contour) at the best
      CAM threshold of a grid (DGL Sec. 3.5 picks the threshold by grid
      search), i.e. MaxBoxAcc;
    * ``max_box_acc_v2``: mean over ``iou_thresholds`` with every contour;
    * ``best_threshold``: the threshold of ``gt_known_loc``.

    Args:
        model: trained classifier (see `DualGradient`).
        source: a `wsol_keras.data` source (``dataset(split)``,
            ``num_examples(split)``).
        layer_names: layer paths.
        split: split to evaluate.
        method: one of `localization.GRADIENT_MAP_METHODS` (dgl, pcs,
            gradcam, gradcam++, xgradcam, layercam, hirescam, eigencam, scorecam).
        alpha: Eq. 7 constant.
        batch_size: images per DualGradient call.
        max_images: optional cap on the number of images.
        cam_threshold_step: threshold grid step.
        iou_thresholds: IoU levels (percent) of MaxBoxAccV2.
        **kwargs: more `Localizer` / `DualGradient` arguments
            (``scorecam_channels``, ``logits_fn``, ``output_key``).

    Returns:
        dict layer -> dict of the metrics above (percent) and ``num_images``.
    """
    n = source.num_examples(split)
    if max_images:
        n = min(n, int(max_images))
    size = int(source.dataset(split).element_spec["image"].shape[0])
    localizer = localization.Localizer(
        model,
        size,
        map_method=method,
        dgl_layer=list(layer_names),
        alpha=alpha,
        **kwargs,
    )
    explainer = localizer.explainer
    thresholds = np.arange(0.0, 1.0, float(cam_threshold_step))
    v1 = {
        n: metrics_lib.BoxAccuracy(thresholds, (50,), multi_contour=False)
        for n in explainer.layer_names
    }
    v2 = {
        n: metrics_lib.BoxAccuracy(thresholds, iou_thresholds, multi_contour=True)
        for n in explainer.layer_names
    }
    for batch in source.dataset(split).take(n).batch(batch_size):
        images = tf.cast(batch["image"], tf.float32)
        maps = localizer.layer_maps(images, batch["label"])
        gt = [b[:k] for b, k in zip(batch["boxes"].numpy(), batch["num_boxes"].numpy())]
        for name in explainer.layer_names:
            m = maps[name].numpy()
            v1[name].update(m, gt)
            v2[name].update(m, gt)
    results = {}
    for name in explainer.layer_names:
        r1, r2 = v1[name].result(), v2[name].result()
        results[name] = {
            "gt_known_loc": r1["max_box_acc_iou50"],
            "best_threshold": r1["best_threshold_iou50"],
            "max_box_acc_v2": r2["max_box_acc"],
            "num_images": r1["num_images"],
        }
    return results


def format_sweep_table(results):
    """Plain-text table of `layer_sweep` results, one row per layer."""
    width = max([len("layer")] + [len(n) for n in results])
    lines = [
        f"{'layer':{width}s}  GT-known Loc  MaxBoxAccV2  threshold  images",
    ]
    for name, r in results.items():
        lines.append(
            f"{name:{width}s}  {r['gt_known_loc']:12.2f}  {r['max_box_acc_v2']:11.2f}"
            f"  {r['best_threshold']:9.2f}  {r['num_images']:6d}"
        )
    return "\n".join(lines)
