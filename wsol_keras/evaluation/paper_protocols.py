"""The papers' own test protocols, as numpy functions over one image's maps.

These sit beside wsolevaluation's protocol (`wsol_keras.evaluation.metrics`), which the
package reports by default; `wsol_keras.evaluation.protocol` wires them into
`wsol-eval` as ``config.eval`` options. (The papers' training input, original
-> 256 -> random 224 crop, is `wsol_keras.data.train_loader`'s; map
upsampling is `wsol_keras.localization.primitives.upsample_maps`.)

* Ten-crop classification: the 4 corners + center of the resized image and
  their mirror images (ACoL Sec. 4.1, DANet Sec. 4.1, DGL Sec. 4.1, SLT-Net
  Sec. 4.1), softmax scores averaged (xuehaolan/DANet exper/val_hierarchy.py
  `--tencrop True`: `F.softmax(logits).view(1, ncrops, -1).mean(1)`); crop
  order of torchvision's `TenCrop`.
* Map averaging over the ten crops (``eval.ten_crop_maps="average"``, an
  option: DGL Sec. 4.2 takes its maps from the single 224 resize): each
  crop's map is pasted back where the crop came from (mirrored back for the
  flipped crops) and the pasted maps averaged where they cover the image.
* SPN's Object Energy (Sec. 4.1: energy map rescaled to the image and
  normalized, the share of energy inside the ground-truth boxes). SPN's
  CorLoc box lives in `wsol_keras.evaluation.multilabel_metrics.spn_box`.
* DANet's union box (utils/localization.py `mode='union'`:
  `extract_bbox_from_map(cam >= threshold)`) and its threshold sweep
  (val_hierarchy.py `--threshold 0.05,...,0.3`).
"""

import cv2
import numpy as np

from wsol_keras.localization import boxes as boxes_lib
DANET_THRESHOLDS = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3)


def ten_crop_offsets(height, width, crop):
    """[(top, left, flipped)] of torchvision's TenCrop on an H x W image.

    Order: top-left, top-right, bottom-left, bottom-right, center, then the
    same five taken from the horizontally flipped image (so the flipped
    "top-left" is the mirror of the original top-right).  Offsets are in the
    coordinates of the image the crop was cut from (flipped or not).
    """
    if crop > height or crop > width:
        raise ValueError(f"ten_crop: crop {crop} larger than the image {height}x{width}")
    center = (int(round((height - crop) / 2.0)), int(round((width - crop) / 2.0)))
    five = [(0, 0), (0, width - crop), (height - crop, 0), (height - crop, width - crop), center]
    return [(t, l, False) for t, l in five] + [(t, l, True) for t, l in five]


def ten_crop(image, crop):
    """[H, W, C] image -> [10, crop, crop, C] crops (torchvision TenCrop order)."""
    image = np.asarray(image)
    h, w = image.shape[:2]
    flipped = image[:, ::-1]
    out = []
    for top, left, flip in ten_crop_offsets(h, w, crop):
        src = flipped if flip else image
        out.append(src[top : top + crop, left : left + crop])
    return np.stack(out)


def ten_crop_scores(logits):
    """[10, C] logits -> [C] mean softmax (DANet val_hierarchy.py)."""
    z = np.asarray(logits, np.float64)
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    return p.mean(axis=0)


def ten_crop_map_average(maps, height, width):
    """[10, crop, crop] maps (at crop resolution) -> [H, W] averaged map.

    Each crop's map is pasted back where its crop came from, flipped crops
    mirrored back; pixels covered by no crop (none for crop > size / 2) are 0.
    """
    maps = np.asarray(maps, np.float64)
    crop = maps.shape[1]
    total = np.zeros((height, width))
    count = np.zeros((height, width))
    for m, (top, left, flip) in zip(maps, ten_crop_offsets(height, width, crop)):
        canvas = np.zeros((height, width))
        cover = np.zeros((height, width))
        canvas[top : top + crop, left : left + crop] = m
        cover[top : top + crop, left : left + crop] = 1.0
        if flip:  # the crop was cut from the mirrored image
            canvas, cover = canvas[:, ::-1], cover[:, ::-1]
        total += canvas
        count += cover
    return np.where(count > 0, total / np.maximum(count, 1), 0.0)


def _tight_box(mask):
    """(x0, y0, x1, y1) inclusive pixel box of all True pixels; None if empty."""
    rows, cols = np.any(mask, axis=1), np.any(mask, axis=0)
    if not rows.any():
        return None
    y0, y1 = np.where(rows)[0][[0, -1]]
    x0, x1 = np.where(cols)[0][[0, -1]]
    return int(x0), int(y0), int(x1), int(y1)


def object_energy(cam, gt_boxes, height, width):
    """SPN Sec. 4.1 Object Energy of one image in [0, 1].

    The map is rescaled to the image (bilinear), negatives clipped, normalized
    to sum 1; the result is the energy of pixels inside any ground-truth box
    (inclusive pixel boxes x0, y0, x1, y1; a pixel in two boxes counts once).
    """
    energy = cv2.resize(np.asarray(cam, np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    energy = np.maximum(energy.astype(np.float64), 0.0)
    total = energy.sum()
    if total <= 0:
        return 0.0
    inside = np.zeros((height, width), bool)
    for x0, y0, x1, y1 in np.asarray(gt_boxes, int).reshape(-1, 4):
        inside[max(y0, 0) : y1 + 1, max(x0, 0) : x1 + 1] = True
    return float(energy[inside].sum() / total)


def union_box(cam, threshold):
    """DANet `mode='union'`: box over ALL pixels of the normalized map >= threshold
    (inclusive x0, y0, x1, y1); (0, 0, 0, 0) when none, as the release."""
    box = _tight_box(np.asarray(cam) >= threshold)
    return box if box is not None else (0, 0, 0, 0)


class UnionBoxSweep:
    """GT-known localization accuracy (%) of the union box at each threshold
    (DANet val_hierarchy.py: one localization pass per ``--threshold``),
    streaming: ``update`` one image at a time, ``result`` at the end.

    An image is correct when its union box reaches IoU >= `iou` (inclusive +1
    convention, `wsol_keras.localization.boxes.iou_xyxy`, as DANet's evaluate.locerr) with
    one of its ground-truth boxes.
    """

    def __init__(self, thresholds=DANET_THRESHOLDS, iou=0.5):
        self.thresholds = tuple(float(t) for t in thresholds)
        if not self.thresholds:
            raise ValueError("UnionBoxSweep: no threshold")
        self.iou = float(iou)
        self.hits = np.zeros(len(self.thresholds), np.int64)
        self.num_images = 0

    def update(self, cam, gt_boxes):
        """cam: one normalized [H, W] map; gt_boxes: [N, 4] xyxy in its pixels."""
        gt = np.asarray(gt_boxes, np.float64).reshape(-1, 4)
        for j, t in enumerate(self.thresholds):
            self.hits[j] += boxes_lib.iou_xyxy([union_box(cam, t)], gt).max() >= self.iou
        self.num_images += 1

    def result(self):
        """{threshold (str, JSON keys): accuracy in percent}."""
        if not self.num_images:
            raise ValueError("UnionBoxSweep.result() called before any update")
        return {
            f"{t:g}": 100.0 * float(h) / self.num_images
            for t, h in zip(self.thresholds, self.hits)
        }
