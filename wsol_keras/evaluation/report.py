"""Report figures: heat-map overlays with boxes, and box accuracy vs CAM threshold."""

import os

import cv2
import numpy as np

from wsol_keras.localization import boxes as boxes_lib
from wsol_keras.localization.cam_family import SCORECAM_DEFAULT_CHANNELS
from wsol_keras.localization.dual_gradient import METHODS_DGL
def _mpl():
    # Deferred on purpose (no cycle): matplotlib is heavy and only the report
    # figures need it, and the Agg backend must be chosen before pyplot loads.
    import matplotlib  # pylint: disable=g-import-not-at-top

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

    return plt


def describe_map(config):
    """The map method in words: ``dgl on backbone/.../stage3_relu1``, ``topk (K=2)``."""
    e = config.eval
    method = str(e.get("map_method", "cam"))
    if method in METHODS_DGL:
        if method == "scorecam":
            method += f" (top-{e.get('scorecam_channels', SCORECAM_DEFAULT_CHANNELS)} channels)"
        return f"{method} on layer {e.get('dgl_layer', '') or '(none)'}"
    if method == "topk":
        return f"topk (K={e.get('topk', '?')})"
    return method


def table_heading(split, config, protocol=None):
    """The line above a metrics table: what was evaluated, on which split."""
    what = protocol or f"map {describe_map(config)}"
    return f"{config.method.name} / {config.model.backbone}, {split} split, {what}:"


def grid_title(split, config):
    """Title of heatmaps.png: method, backbone, map method (and layer), split."""
    return (
        f"{config.method.name} / {config.model.backbone} - map {describe_map(config)}"
        f" - {split} split"
    )


PRED_COLOR = "lime"
GT_COLOR = "red"


class ExampleCollector:
    """Keeps the first `n` test images with their maps and draws a grid.

    Called as `collector(batch, results, threshold)` by the evaluator.
    Green: predicted box (regressor output, else `box_fn(map, threshold)`: by
    default the largest contour of the map at the CAM threshold, the Loc box
    of ``config.eval.box_method`` in the evaluator); red: ground-truth boxes.
    `title` (see `grid_title`) goes above the grid, with a legend of the box
    colours.
    """

    def __init__(self, n, class_names, title=None, box_fn=None):
        self.box_fn = box_fn or boxes_lib.largest_contour_box
        self.n = int(n)
        self.class_names = list(class_names)
        self.title = title
        self.items = []
        self.threshold = None

    def __call__(self, batch, results, threshold):
        self.threshold = float(threshold)
        size = batch["image"].shape[1]
        for i in range(batch["image"].shape[0]):
            if len(self.items) >= self.n:
                return
            score = results["maps"][i]
            if "boxes" in results:
                pred = np.clip(results["boxes"][i], 0, 1) * (size - 1)
            else:
                pred = self.box_fn(score, threshold)
            n = int(batch["num_boxes"][i])
            self.items.append(
                {
                    "image": batch["image"][i].numpy(),
                    "map": score,
                    "pred_box": np.asarray(pred, np.float32),
                    "gt_boxes": batch["boxes"][i].numpy()[:n],
                    "label": int(batch["label"][i]),
                    "pred": int(np.argmax(results["logits"][i])),
                }
            )

    def save(self, path):
        if not self.items:
            return
        plt = _mpl()
        cols = min(4, len(self.items))
        rows = int(np.ceil(len(self.items) / cols))
        fig, axes = plt.subplots(
            rows, cols, figsize=(3 * cols, 3.6 * rows), squeeze=False
        )
        for ax in axes.ravel():
            ax.axis("off")
        for ax, item in zip(axes.ravel(), self.items):
            ax.imshow(overlay(item["image"], item["map"]))
            for box, color in [(item["pred_box"], PRED_COLOR)] + [
                (b, GT_COLOR) for b in item["gt_boxes"]
            ]:
                x0, y0, x1, y1 = box
                ax.add_patch(
                    plt.Rectangle(
                        (x0, y0),
                        x1 - x0,
                        y1 - y0,
                        fill=False,
                        color=color,
                        linewidth=1.5,
                    )
                )
            name = lambda c: self.class_names[c] if c < len(self.class_names) else c
            ok = "ok" if item["pred"] == item["label"] else "wrong"
            ax.set_title(
                f"gt {name(item['label'])}\npred {name(item['pred'])} ({ok})",
                fontsize=7,
            )
        pred_label = "predicted box"
        if self.threshold is not None:
            pred_label += f" (CAM threshold {self.threshold:.2f})"
        handles = [
            plt.Rectangle((0, 0), 1, 1, fill=False, color=PRED_COLOR, label=pred_label),
            plt.Rectangle(
                (0, 0), 1, 1, fill=False, color=GT_COLOR, label="ground truth"
            ),
        ]
        fig.legend(
            handles=handles, loc="lower center", ncol=2, fontsize=8, frameon=False
        )
        if self.title:
            fig.suptitle(self.title, fontsize=9)
        # Room for the title above and the legend below the grid.
        fig.tight_layout(rect=(0, 0.04, 1, 0.95 if self.title else 1))
        _savefig(fig, path)
        plt.close(fig)


def overlay(image, scoremap, alpha=0.5):
    """Blends a JET-coloured [0, 1] map onto a uint8 RGB image."""
    heat = cv2.applyColorMap(np.uint8(255 * np.clip(scoremap, 0, 1)), cv2.COLORMAP_JET)[
        ..., ::-1
    ]
    if heat.shape[:2] != image.shape[:2]:
        heat = cv2.resize(heat, image.shape[1::-1])
    return np.uint8((1 - alpha) * image + alpha * heat)


def plot_box_accuracy(path, thresholds, curves, chosen_threshold):
    """Box accuracy (all contours) against CAM threshold, one curve per IoU."""
    if not curves:  # no boxes in the data (masks only)
        return
    plt = _mpl()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for iou, values in sorted(curves.items(), key=lambda kv: int(kv[0])):
        ax.plot(thresholds, values, label=f"IoU {int(iou) / 100:.1f}")
    ax.axvline(
        chosen_threshold,
        color="gray",
        linestyle="--",
        label=f"chosen {chosen_threshold:.2f}",
    )
    ax.set_xlabel("CAM threshold")
    ax.set_ylabel("box accuracy (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8)
    fig.tight_layout()
    _savefig(fig, path)
    plt.close(fig)


def _savefig(fig, path):
    tmp = os.path.join(
        os.path.dirname(os.path.abspath(path)), ".tmp-" + os.path.basename(path)
    )
    fig.savefig(tmp, dpi=110, format="png")
    os.replace(tmp, path)


_ORDER = (
    "top1_cls",
    "top5_cls",
    "top1_loc",
    "top5_loc",
    "gt_known_loc",
    "max_box_acc",
    "max_box_acc_v2",
    "max_box_acc_v2_iou30",
    "max_box_acc_v2_iou50",
    "max_box_acc_v2_iou70",
    "pxap",
    "pointing_game",
    "corloc",
    "object_energy",
    "cam_threshold",
)


def format_table(metrics):
    rows = [(k, metrics[k]) for k in _ORDER if k in metrics]
    width = max(len(k) for k, _ in rows)
    lines = ["metric".ljust(width) + "  value", "-" * (width + 9)]
    for k, v in rows:
        lines.append(
            f"{k.ljust(width)}  {v:7.2f}"
            if k != "cam_threshold"
            else f"{k.ljust(width)}  {v:7.3f}"
        )
    if "cam_threshold_source" in metrics:
        lines.append(f"cam_threshold from {metrics['cam_threshold_source']}")
    if "box_method" in metrics:  # wsol_keras.evaluation.protocol
        box = metrics["box_method"]
        if box == "danet_union":
            box += f" at {metrics.get('box_threshold', float('nan')):g}"
        crop = f"ten-crop of {metrics['ten_crop_resize']}" if metrics.get("ten_crop") else "single image"
        lines.append(
            f"Loc / CorLoc box: {box}; maps and boxes at the "
            f"{metrics['image_size_mode']} image size; classification: {crop}"
        )
    if "num_images" in metrics:
        lines.append(
            f"{metrics['num_images']} images, "
            f"{metrics.get('num_images_with_boxes', '?')} with boxes (the Loc "
            "and box metrics' denominator)"
        )
    return "\n".join(lines)
