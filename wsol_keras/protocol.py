"""The papers' own test protocols, as numpy functions over one image's maps.

These sit beside wsolevaluation's protocol (`wsol_keras.metrics`), which the
package reports by default; `wsol-eval` wires them in as options.

* Ten-crop classification: the 4 corners + center of the resized image and
  their mirror images (ACoL Sec. 4.1, DANet Sec. 4.1, DGL Sec. 4.1, SLT-Net
  Sec. 4.1), softmax scores averaged (xuehaolan/DANet exper/val_hierarchy.py
  `--tencrop True`: `F.softmax(logits).view(1, ncrops, -1).mean(1)`); crop
  order of torchvision's `TenCrop`.
* DGL's map averaging over the ten crops (DGL Sec. 4.1: "average 10 crops to
  obtain localization maps"; the released demo has no crop code): each
  crop's map is pasted back where the crop came from (mirrored back for the
  flipped crops) and the pasted maps averaged where they cover the image.
* Training input of the papers: the original resized to 256 x 256, then a
  random 224 crop (`resize_then_random_crop`).
* Map upsampling as wsolevaluation's inference.py: `cv2.resize(cam, size,
  interpolation=cv2.INTER_CUBIC)`, then `normalize_scoremap`; and the same
  cubic as constant matrices for the graph (`upsample_cubic_in_graph`).
* SPN's CorLoc box (SPN Sec. 4.3: threshold at the map's mean, rescale the
  binary map to the image, tightest box over all foreground pixels) and
  Object Energy (Sec. 4.1: energy map rescaled to the image and normalized,
  the share of energy inside the ground-truth boxes).
* DANet's union box (utils/localization.py `mode='union'`:
  `extract_bbox_from_map(cam >= threshold)`) and its threshold sweep
  (val_hierarchy.py `--threshold 0.05,...,0.3`).
"""

import cv2
import numpy as np
import tensorflow as tf

from wsol_keras import cams

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


def resize_then_random_crop(image, resize_size=256, crop_size=224, seed=None):
    """The papers' training input: original -> resize_size^2, random crop.

    Args:
        image: [H, W, 3] tensor of the ORIGINAL image (any size).
        resize_size: side of the square resize (256).
        crop_size: side of the random crop (224).
        seed: optional stateless seed (shape [2]) for tf.image.stateless_random_crop.
    """
    resized = tf.image.resize(
        tf.cast(image, tf.float32), (resize_size, resize_size), method="bilinear", antialias=False
    )
    size = (crop_size, crop_size, resized.shape[-1])
    if seed is None:
        return tf.image.random_crop(resized, size)
    return tf.image.stateless_random_crop(resized, size, seed)


def normalize_scoremap(cam):
    """wsolevaluation inference.py `normalize_scoremap`: min-max to [0, 1];
    a constant or NaN map becomes zeros."""
    cam = np.array(cam, np.float64)
    if np.isnan(cam).any() or cam.min() == cam.max():
        return np.zeros_like(cam)
    cam -= cam.min()
    return cam / cam.max()


def upsample_cubic_in_graph(maps, height, width):
    """[B, h, w] maps -> [B, H, W] as cv2.resize(INTER_CUBIC) per map (see
    `wsol_keras.cams.upsample_maps`, which the evaluator and exports use)."""
    return cams.upsample_maps(maps, (height, width), method="cv2_bicubic")


def upsample_like_wsolevaluation(cam, height, width):
    """wsolevaluation's map upsampling: bicubic cv2.resize, then normalize."""
    resized = cv2.resize(np.asarray(cam, np.float32), (width, height), interpolation=cv2.INTER_CUBIC)
    return normalize_scoremap(resized)


def _tight_box(mask):
    """(x0, y0, x1, y1) inclusive pixel box of all True pixels; None if empty."""
    rows, cols = np.any(mask, axis=1), np.any(mask, axis=0)
    if not rows.any():
        return None
    y0, y1 = np.where(rows)[0][[0, -1]]
    x0, x1 = np.where(cols)[0][[0, -1]]
    return int(x0), int(y0), int(x1), int(y1)


def spn_box(cam, height, width):
    """SPN Sec. 4.3 box: binary map at the map's mean, rescaled to the image
    (nearest), tightest box covering all foreground pixels.  Returns inclusive
    pixel (x0, y0, x1, y1); the whole image if nothing is above the mean."""
    cam = np.asarray(cam, np.float64)
    binary = (cam > cam.mean()).astype(np.uint8)
    binary = cv2.resize(binary, (width, height), interpolation=cv2.INTER_NEAREST)
    box = _tight_box(binary > 0)
    return box if box is not None else (0, 0, width - 1, height - 1)


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


def inclusive_iou(a, b):
    """IoU of inclusive pixel boxes (+1 widths, the DANet / ACoL convention)."""
    ix = min(a[2], b[2]) - max(a[0], b[0]) + 1
    iy = min(a[3], b[3]) - max(a[1], b[1]) + 1
    inter = max(ix, 0) * max(iy, 0)
    area = lambda r: (r[2] - r[0] + 1) * (r[3] - r[1] + 1)
    return inter / float(area(a) + area(b) - inter)


def union_box_sweep(cams, gt_boxes, thresholds=DANET_THRESHOLDS, iou=0.5):
    """GT-known localization accuracy (%) of the union box at each threshold.

    Args:
        cams: list of normalized maps at image resolution.
        gt_boxes: per image an [N, 4] array of inclusive boxes; an image is
            correct if its box reaches `iou` with any of them.
    Returns:
        dict threshold -> accuracy in percent.
    """
    if len(cams) != len(gt_boxes) or not cams:
        raise ValueError(f"union_box_sweep: {len(cams)} maps vs {len(gt_boxes)} box lists")
    out = {}
    for t in thresholds:
        hits = 0
        for cam, boxes in zip(cams, gt_boxes):
            box = union_box(cam, t)
            hits += any(inclusive_iou(box, g) >= iou for g in np.asarray(boxes).reshape(-1, 4))
        out[float(t)] = 100.0 * hits / len(cams)
    return out
