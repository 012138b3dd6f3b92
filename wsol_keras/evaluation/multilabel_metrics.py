"""SPN's evaluation protocol on multi-label data (VOC 2007 / COCO).

Soft Proposal Networks (Zhu et al., CVPR 2017) evaluate with three numbers;
each function here follows the paper and the released SPN.pytorch code
(``demo/experiment/util.py``: ``pointing``, ``corloc``, ``ious``,
``AveragePrecisionMeter``; ``spn/utils.py``: ``localize_from_map``):

* **Pointing game** (Sec. 4.2, "pointing without prediction", after Zhang et
  al., "Top-down Neural Attention by Excitation Backprop", ECCV 2016): for every
  image and every class present in it (any object, VOC "difficult" objects
  included: the released ``gt_labels >= 0``), the maximum of that class's map at
  the original image size is a hit when it lies inside one of the class's boxes
  enlarged by ``tolerance`` pixels on each side (15 px). Accuracy per class =
  hits / images containing the class; the score is the mean over classes.
  Reported on two sets, **All** and **Diff.** Zhang et al.'s difficult set is
  published as per (image, class) flags (one line per test image,
  ``<image name>\t<flag>`` x C, as TorchRay ships
  ``pointing_game_ebp_voc07_difficult.txt``): read it with
  :func:`read_difficult_flags`. Without that file,
  :func:`zhang_difficult_images` applies the paper's wording (an image with a
  small object, under a quarter of the image, and a distractor category), an
  approximation of the published list. The hit test is the released SPN one (a
  square grown by ``tolerance``); TorchRay uses a disc of radius ``tolerance``
  and skips classes whose boxes are all VOC-difficult, SPN's release does not.
* **CorLoc** (Sec. 4.3, Deselaers et al.): per class, over the *positive*
  trainval images (a non-difficult object of the class: the released
  ``gt_labels == 1``), the fraction where the predicted box has IoU >= 0.5 with
  a box of the class; mean over classes. SPN's box (:func:`spn_box`): the map
  thresholded at its mean (``>=``), the tightest box over all foreground
  pixels, inclusive pixel indices; IoU with the inclusive ``+1`` convention.
* **Classification mAP** (Sec. 4.4): per-class average precision, the released
  ``AveragePrecisionMeter`` with ``difficult_examples=True``: images whose only
  objects of the class are difficult are left out of that class's ranking; AP
  is the mean of the precision at each positive (non-interpolated).

Label states per image and class follow VOC's ``ImageSets/Main/<cls>_<split>.txt``:
1 positive, 0 difficult only, -1 absent (:func:`label_states`).
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence

import numpy as np

POSITIVE, DIFFICULT_ONLY, ABSENT = 1, 0, -1


def _boxes_of(boxes, box_labels, c):
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    lab = np.asarray(box_labels).reshape(-1)
    if len(lab) != len(b):
        raise ValueError(f"{len(b)} boxes but {len(lab)} box labels")
    return b[lab == c]


def label_states(box_labels, box_difficult, num_classes: int) -> np.ndarray:
    """VOC's per-class image label: 1 positive, 0 difficult only, -1 absent.

    Args:
      box_labels: int [K] class id of each object of one image.
      box_difficult: bool [K] VOC ``difficult`` flag of each object.
      num_classes: C.

    Returns:
      int32 [C].
    """
    lab = np.asarray(box_labels, np.int64).reshape(-1)
    dif = np.asarray(box_difficult, bool).reshape(-1)
    if len(lab) != len(dif):
        raise ValueError(f"{len(lab)} box labels but {len(dif)} difficult flags")
    out = np.full((num_classes,), ABSENT, np.int32)
    for c, d in zip(lab, dif):
        if not 0 <= c < num_classes:
            raise ValueError(f"box label {c} outside [0, {num_classes})")
        if not d:
            out[c] = POSITIVE
        elif out[c] == ABSENT:
            out[c] = DIFFICULT_ONLY
    return out


def max_point(score_map) -> tuple:
    """(x, y) of the maximum of an [H, W] map (first one in row-major order)."""
    m = np.asarray(score_map)
    if m.ndim != 2:
        raise ValueError(f"max_point: expected an [H, W] map, got shape {m.shape}")
    y, x = np.unravel_index(int(np.argmax(m)), m.shape)
    return int(x), int(y)


def point_hit(point, class_boxes, tolerance: float) -> bool:
    """True when (x, y) lies in one of the [K, 4] xyxy boxes grown by tolerance."""
    x, y = point
    b = np.asarray(class_boxes, np.float64).reshape(-1, 4)
    t = float(tolerance)
    inside = (x >= b[:, 0] - t) & (x <= b[:, 2] + t) & (y >= b[:, 1] - t) & (y <= b[:, 3] + t)
    return bool(inside.any())


def pointing_game(
    points: Sequence[Dict[int, tuple]],
    boxes: Sequence[np.ndarray],
    box_labels: Sequence[np.ndarray],
    num_classes: int,
    tolerance: float = 15.0,
    subset: Optional[Sequence[bool]] = None,
) -> Dict[str, object]:
    """Pointing accuracy per class and its mean (SPN Sec. 4.2).

    Args:
      points: per image, {class id: (x, y)} for every class present in the image
        (the maximum of that class's map, :func:`max_point`, in original pixels).
      boxes: per image, float [K, 4] xyxy boxes in original pixels.
      box_labels: per image, int [K] class id of each box.
      num_classes: C.
      tolerance: pixels added on every side of a box (15 in SPN / Zhang et al.).
      subset: optional bool [N] per image (:func:`zhang_difficult_images`) or
        [N, C] per image and class (:func:`read_difficult_flags`).

    Returns:
      {"per_class": float [C] (nan for a class with no image), "mean": mean over
      classes with images, "counts": int [C] images per class, "missing": number
      of (image, class) pairs present in the ground truth without a point,
      counted as misses}.
    """
    n = len(boxes)
    if len(points) != n or len(box_labels) != n:
        raise ValueError(
            f"points ({len(points)}), boxes ({n}) and box_labels "
            f"({len(box_labels)}) must have one entry per image"
        )
    use = np.ones((n, num_classes), bool) if subset is None else np.asarray(subset, bool)
    if use.shape == (n,):
        use = np.repeat(use[:, None], num_classes, 1)
    if use.shape != (n, num_classes):
        raise ValueError(
            f"subset must have shape ({n},) or ({n}, {num_classes}), got {use.shape}"
        )
    hits = np.zeros(num_classes, np.int64)
    counts = np.zeros(num_classes, np.int64)
    missing = 0
    for i in range(n):
        lab = np.asarray(box_labels[i]).reshape(-1)
        for c in sorted(set(int(v) for v in lab)):
            if not 0 <= c < num_classes:
                raise ValueError(f"image {i}: box label {c} outside [0, {num_classes})")
            if not use[i, c]:
                continue
            counts[c] += 1
            if c not in points[i]:
                missing += 1
                continue
            hits[c] += point_hit(points[i][c], _boxes_of(boxes[i], lab, c), tolerance)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.where(counts > 0, hits / np.maximum(counts, 1), np.nan)
    valid = counts > 0
    mean = float(per_class[valid].mean()) if valid.any() else float("nan")
    return {"per_class": per_class, "mean": mean, "counts": counts, "missing": missing}


def zhang_difficult_images(boxes, box_labels, image_sizes, small_fraction=0.25):
    """Zhang et al.'s difficult pointing subset (Excitation Backprop, Sec. 5.1).

    An image is difficult when it has at least one small object (box area below
    ``small_fraction`` of the image area) and at least two categories (the other
    one is a distractor for the small object's map).

    Args:
      boxes: per image, float [K, 4] xyxy in original pixels.
      box_labels: per image, int [K].
      image_sizes: per image, (height, width).
      small_fraction: area threshold (1/4 in the paper).

    Returns:
      bool [N].
    """
    out = []
    for b, lab, (h, w) in zip(boxes, box_labels, image_sizes):
        b = np.asarray(b, np.float64).reshape(-1, 4)
        area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
        small = bool((area < small_fraction * float(h) * float(w)).any())
        out.append(small and len(set(np.asarray(lab).reshape(-1).tolist())) >= 2)
    return np.asarray(out, bool)


def read_difficult_flags(path: str, image_ids: Sequence[str], num_classes: int) -> np.ndarray:
    """Zhang et al.'s published difficult (image, class) flags -> bool [N, C].

    One line per image: ``<image name>`` then C 0/1 flags (tab or space
    separated). Images not in the file get no difficult pair (False).
    """
    flags: Dict[str, np.ndarray] = {}
    with open(path, encoding="utf-8") as f:
        for ln, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != num_classes + 1 or any(p not in ("0", "1") for p in parts[1:]):
                raise ValueError(
                    f"{path}:{ln}: expected '<image name>' and {num_classes} 0/1 flags, "
                    f"got {len(parts) - 1} field(s) after the name"
                )
            flags[parts[0]] = np.asarray([p == "1" for p in parts[1:]])
    out = np.zeros((len(image_ids), num_classes), bool)
    for i, iid in enumerate(image_ids):
        key = str(iid).rsplit("/", 1)[-1].split(".")[0]
        if key in flags:
            out[i] = flags[key]
    return out


def spn_box(score_map) -> np.ndarray:
    """SPN's box: tightest box over pixels >= the map's mean (inclusive indices).

    Follows the released ``localize_from_map(..., multi_objects=False)``.
    Returns float [4] xyxy; every pixel is >= the mean of a constant map, so a
    constant map gives the whole image.
    """
    m = np.asarray(score_map, np.float64)
    if m.ndim != 2:
        raise ValueError(f"spn_box: expected an [H, W] map, got shape {m.shape}")
    fg = m >= m.mean()
    rows = np.flatnonzero(fg.any(1))
    cols = np.flatnonzero(fg.any(0))
    return np.asarray([cols[0], rows[0], cols[-1], rows[-1]], np.float64)


def iou_inclusive(box, boxes) -> np.ndarray:
    """IoU of one xyxy box with [K, 4] boxes, counting pixels inclusively (+1)."""
    a = np.asarray(box, np.float64).reshape(4)
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    iw = np.clip(np.minimum(a[2], b[:, 2]) - np.maximum(a[0], b[:, 0]) + 1, 0, None)
    ih = np.clip(np.minimum(a[3], b[:, 3]) - np.maximum(a[1], b[:, 1]) + 1, 0, None)
    inter = iw * ih
    area_a = (a[2] - a[0] + 1) * (a[3] - a[1] + 1)
    area_b = (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)
    return inter / (area_a + area_b - inter)


def corloc(
    pred_boxes: Sequence[Dict[int, np.ndarray]],
    boxes: Sequence[np.ndarray],
    box_labels: Sequence[np.ndarray],
    box_difficult: Sequence[np.ndarray],
    num_classes: int,
    iou_threshold: float = 0.5,
) -> Dict[str, object]:
    """CorLoc per class and its mean (SPN Sec. 4.3, Table 4).

    Args:
      pred_boxes: per image, {class id: xyxy box} (:func:`spn_box` of the class
        map at the original size) for the classes present in the image.
      boxes, box_labels, box_difficult: per image ground truth ([K, 4], [K], [K]).
      num_classes: C.
      iou_threshold: 0.5.

    Returns:
      {"per_class": float [C] (nan without positive images), "mean",
      "counts": positive images per class, "missing": positive (image, class)
      pairs without a predicted box, counted as failures}.
    """
    n = len(boxes)
    if not (len(pred_boxes) == len(box_labels) == len(box_difficult) == n):
        raise ValueError("pred_boxes, boxes, box_labels and box_difficult must "
                         "have one entry per image")
    correct = np.zeros(num_classes, np.int64)
    counts = np.zeros(num_classes, np.int64)
    missing = 0
    for i in range(n):
        states = label_states(box_labels[i], box_difficult[i], num_classes)
        for c in np.flatnonzero(states == POSITIVE):
            counts[c] += 1
            if int(c) not in pred_boxes[i]:
                missing += 1
                continue
            gt = _boxes_of(boxes[i], box_labels[i], c)
            correct[c] += bool(iou_inclusive(pred_boxes[i][int(c)], gt).max() >= iou_threshold)
    per_class = np.where(counts > 0, correct / np.maximum(counts, 1), np.nan)
    valid = counts > 0
    mean = float(per_class[valid].mean()) if valid.any() else float("nan")
    return {"per_class": per_class, "mean": mean, "counts": counts, "missing": missing}


def average_precision(scores, states) -> float:
    """Non-interpolated AP of one class (released ``AveragePrecisionMeter``).

    Args:
      scores: float [N] classifier scores.
      states: int [N] 1 positive, 0 difficult only (left out), -1 negative.

    Returns:
      Mean precision at the rank of each positive; nan without positives.
    """
    s = np.asarray(scores, np.float64).reshape(-1)
    t = np.asarray(states).reshape(-1)
    if s.shape != t.shape:
        raise ValueError(f"scores {s.shape} and states {t.shape} differ in shape")
    keep = t != DIFFICULT_ONLY
    s, t = s[keep], t[keep]
    # Stable sort: ties keep image order, as torch.sort does on CPU for equal keys.
    order = np.argsort(-s, kind="stable")
    pos = (t[order] == POSITIVE).astype(np.float64)
    if pos.sum() == 0:
        return float("nan")
    precision = np.cumsum(pos) / np.arange(1, len(pos) + 1)
    return float((precision * pos).sum() / pos.sum())


def classification_map(scores, states) -> Dict[str, object]:
    """Per-class AP and mAP over classes with positives.

    Args:
      scores: float [N, C].
      states: int [N, C] as in :func:`label_states`.
    """
    s = np.asarray(scores, np.float64)
    t = np.asarray(states)
    if s.ndim != 2 or s.shape != t.shape:
        raise ValueError(f"scores {s.shape} and states {t.shape} must both be [N, C]")
    ap = np.asarray([average_precision(s[:, c], t[:, c]) for c in range(s.shape[1])])
    valid = ~np.isnan(ap)
    return {"per_class": ap, "mean": float(ap[valid].mean()) if valid.any() else float("nan")}
