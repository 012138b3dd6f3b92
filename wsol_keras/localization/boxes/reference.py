"""Score map -> boxes: the reference conventions and wsolevaluation's cv2 loop.

Conventions (the one place they are documented):

* Boxes are absolute pixel ``xyxy``. Boxes *estimated* from a score map follow
  wsolevaluation's ``compute_bboxes_from_scoremaps``: for a contour with
  ``cv2.boundingRect`` ``(x, y, w, h)`` the box is ``(x, y, x + w, y + h)`` with
  ``x + w`` clipped to ``width - 1`` and ``y + h`` to ``height - 1``. For a connected
  set of pixels with inclusive pixel extent ``[cx0, cx1] x [cy0, cy1]`` that is
  ``(cx0, cy0, min(cx1 + 1, W - 1), min(cy1 + 1, H - 1))``.
* IoU uses the inclusive ``+1`` convention of wsolevaluation's
  ``calculate_multiple_iou`` (a box ``(x0, y0, x1, y1)`` covers
  ``(x1 - x0 + 1) * (y1 - y0 + 1)`` pixels).

Reference read for this module (clovaai/wsolevaluation, ``evaluation.py``:
``compute_bboxes_from_scoremaps``, ``calculate_multiple_iou``; ``inference.py``:
``normalize_scoremap``; ``util.py``: ``check_scoremap_validity``). Per threshold
``t`` the reference does::

    scoremap_image = np.expand_dims((scoremap * 255).astype(np.uint8), 2)
    _, thr = cv2.threshold(scoremap_image, int(t * np.max(scoremap_image)), 255,
                           cv2.THRESH_BINARY)          # foreground: pixel > level
    contours = cv2.findContours(thr, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[0]
    no contour            -> box [0, 0, 0, 0] (one box)
    multi_contour False   -> [max(contours, key=cv2.contourArea)]
    multi_contour True    -> every contour (RETR_TREE: outer borders *and* hole borders)

The other engines give the same boxes: `component_tree` (fast numpy/cv2 path
used by the metrics), `graph` (pure TF ops, in the exported graphs).
"""


import cv2
import numpy as np


def normalize_scoremap(cam):
    """Min-max normalizes one map to [0, 1] (wsolevaluation ``normalize_scoremap``).

    Args:
        cam: array-like [H, W].

    Returns:
        float64 [H, W] in [0, 1]; all zeros when the map contains a NaN or is
        constant (the reference's two edge cases). Infinite values raise.
    """
    cam = np.array(cam, dtype=np.float64, copy=True)
    if cam.ndim != 2:
        raise ValueError(
            f"normalize_scoremap: expected a 2-D map, got shape {cam.shape}"
        )
    if np.isnan(cam).any():
        return np.zeros_like(cam)
    if np.isinf(cam).any():
        raise ValueError("normalize_scoremap: map contains inf values")
    lo, hi = cam.min(), cam.max()
    if lo == hi:
        return np.zeros_like(cam)
    cam -= lo
    cam /= cam.max()
    return cam


def _check_scoremap(scoremap):
    scoremap = np.asarray(scoremap)
    if scoremap.ndim != 2:
        raise ValueError(f"scoremap must be 2-D [H, W], got shape {scoremap.shape}")
    if not np.issubdtype(scoremap.dtype, np.floating):
        raise TypeError(f"scoremap must be a float array, got dtype {scoremap.dtype}")
    if np.isnan(scoremap).any():
        raise ValueError(
            "scoremap contains NaN (normalize it with normalize_scoremap first)"
        )
    if (scoremap > 1).any() or (scoremap < 0).any():
        raise ValueError(
            f"scoremap must lie in [0, 1]; min={scoremap.min()}, max={scoremap.max()}"
        )
    return scoremap


def quantize_scoremap(scoremap):
    """``(scoremap * 255).astype(uint8)`` as the reference (truncation, not rounding).

    The product is taken in float64, as in wsolevaluation where maps reach the
    evaluator as ``np.float`` (``t2n``); float32 maps are widened first, so a value
    like ``np.float32(128 / 255)`` quantizes the same way as there.
    """
    return (_check_scoremap(scoremap).astype(np.float64) * 255).astype(np.uint8)


def quantize_scoremaps(scoremaps):
    """`quantize_scoremap` of a stack [B, H, W] at once (same values), checking
    the whole stack and naming the first bad map's index."""
    maps = np.asarray(scoremaps)
    if maps.ndim != 3:
        raise ValueError(f"scoremaps must be 3-D [B, H, W], got shape {maps.shape}")
    if not np.issubdtype(maps.dtype, np.floating):
        raise TypeError(f"scoremaps must be a float array, got dtype {maps.dtype}")
    flat = maps.reshape(len(maps), -1)
    bad = np.isnan(flat).any(axis=1)
    if bad.any():
        raise ValueError(
            f"scoremaps[{int(np.flatnonzero(bad)[0])}] contains NaN (normalize it "
            "with normalize_scoremap first)"
        )
    lo, hi = flat.min(axis=1, initial=0.0), flat.max(axis=1, initial=0.0)
    bad = (hi > 1) | (lo < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"scoremaps[{i}] must lie in [0, 1]; min={lo[i]}, max={hi[i]}"
        )
    return (maps.astype(np.float64) * 255).astype(np.uint8)


def threshold_levels(img_max, thresholds):
    """Integer cut level ``int(t * max)`` per CAM threshold (Python ``int`` truncation)."""
    # float64 product then truncation toward zero == Python int(np.float64 * np.uint8)
    t = np.asarray(
        list(thresholds) if not isinstance(thresholds, np.ndarray) else thresholds,
        dtype=np.float64,
    ).reshape(-1)
    return np.trunc(t * float(img_max)).astype(np.int64)


def _box_from_rect(x, y, w, h, width, height):
    return [x, y, min(x + w, width - 1), min(y + h, height - 1)]


def _cv2_level(img, level, multi_contour):
    """Boxes at one integer level, exactly as the reference's ``scoremap2bbox``."""
    height, width = img.shape
    # cv2.threshold on uint8 with a fractional/negative thresh behaves like "> level".
    _, thr = cv2.threshold(img, int(level), 255, cv2.THRESH_BINARY)
    contours = cv2.findContours(thr, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[0]
    if len(contours) == 0:
        return np.asarray([[0, 0, 0, 0]])
    if not multi_contour:
        contours = [max(contours, key=cv2.contourArea)]
    return np.asarray(
        [_box_from_rect(*cv2.boundingRect(c), width, height) for c in contours]
    )


def reference_boxes_from_scoremap(scoremap, thresholds, multi_contour=False):
    """Plain per-threshold loop (one ``findContours`` per threshold), the reference.

    Args:
        scoremap: float [H, W] in [0, 1].
        thresholds: iterable of CAM thresholds.
        multi_contour: every contour (MaxBoxAccV2) instead of the largest one.

    Returns:
        (list of int arrays [n_t, 4] per threshold, list of n_t).
    """
    img = quantize_scoremap(scoremap)
    levels = threshold_levels(img.max(), thresholds)
    boxes = [_cv2_level(img, lv, multi_contour) for lv in levels]
    return boxes, [len(b) for b in boxes]



def iou_xyxy(box_a, box_b):
    """Pairwise IoU [num_a, num_b] with the inclusive +1 convention.

    Same arithmetic as wsolevaluation ``calculate_multiple_iou``: degenerate
    pairs (union <= 0) get IoU 0.

    Args:
        box_a: [num_a, 4] xyxy.
        box_b: [num_b, 4] xyxy.
    """
    a = np.asarray(box_a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(box_b, dtype=np.float64).reshape(-1, 4)
    ix0 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy0 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix1 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.maximum(0, ix1 - ix0 + 1) * np.maximum(0, iy1 - iy0 + 1)
    area_a = (a[:, 2] - a[:, 0] + 1) * (a[:, 3] - a[:, 1] + 1)
    area_b = (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)
    den = area_a[:, None] + area_b[None, :] - inter
    degenerate = den <= 0
    iou = inter / np.where(degenerate, 1, den)
    iou[degenerate] = 0
    return iou
