"""Validation of the metrics' arguments and inputs (used by :mod:`wsol_keras.evaluation.metrics`).

Everything that would otherwise end as a silent miss or deep inside numpy is
rejected here with the batch index and the value: maps that are not [B, H, W] or
empty, ground-truth boxes that are not groups of 4 finite, non-negative, ordered
numbers inside the map, CAM thresholds outside [0, 1], IoU levels that are not
integer percents.
"""

import numpy as np


def as_maps(scoremaps, name="scoremaps"):
    maps = np.asarray(scoremaps)
    if maps.ndim == 2:
        maps = maps[None]
    if maps.ndim != 3:
        raise ValueError(
            f"{name} must be [B, H, W] (or one [H, W] map), got shape {maps.shape}"
        )
    if len(maps) and (maps.shape[1] == 0 or maps.shape[2] == 0):
        raise ValueError(
            f"{name} has shape {maps.shape}: every map is empty "
            f"(first at batch index 0)"
        )
    if not np.issubdtype(maps.dtype, np.floating):
        maps = maps.astype(np.float64)
    return maps


def clean_gt(boxes, index, map_shape=None):
    """GT boxes of one image as float [n, 4]; all -1 padding rows are dropped.

    Rejects (naming the batch ``index``) what would otherwise count as a silent
    miss: a count that is not a multiple of 4, non-finite or negative
    coordinates, flipped boxes, and boxes beyond the ``map_shape`` (H, W) they
    are scored against (x1 <= W and y1 <= H: a box ending on the image border
    scales to exactly the map side).
    """
    b = np.asarray(boxes, dtype=np.float64)
    if b.size == 0:
        raise ValueError(f"gt_boxes[{index}]: no ground-truth box")
    if b.size % 4 or (b.ndim > 1 and b.shape[-1] != 4):
        raise ValueError(
            f"gt_boxes[{index}]: {b.size} number(s) of shape {b.shape}; expected "
            f"xyxy boxes, a multiple of 4 numbers as [n, 4], got {b.tolist()}"
        )
    b = b.reshape(-1, 4)
    if not np.isfinite(b).all():
        raise ValueError(f"gt_boxes[{index}]: coordinates not finite: {b.tolist()}")
    b = b[~np.all(b == -1, axis=1)]
    if len(b) == 0:
        raise ValueError(
            f"gt_boxes[{index}]: only padding rows (-1), no ground-truth box"
        )
    if (b < 0).any():
        raise ValueError(
            f"gt_boxes[{index}]: negative coordinates (pixels start at 0): {b.tolist()}"
        )
    if (b[:, 2] < b[:, 0]).any() or (b[:, 3] < b[:, 1]).any():
        raise ValueError(
            f"gt_boxes[{index}]: boxes must be xyxy with x1 >= x0 and y1 >= y0, got {b.tolist()}"
        )
    if map_shape is not None:
        h, w = map_shape
        # float32 scaling of a border box may overshoot the side by ~1e-5
        if (b[:, 2] > w + 1e-3).any() or (b[:, 3] > h + 1e-3).any():
            raise ValueError(
                f"gt_boxes[{index}]: box outside the {h} x {w} map it is scored "
                f"against (boxes must be in the map's pixels): {b.tolist()}"
            )
    return b


def check_cam_thresholds(values):
    t = np.asarray(values, dtype=np.float64).reshape(-1)
    if len(t) == 0:
        raise ValueError("cam_thresholds is empty")
    bad = ~np.isfinite(t) | (t < 0) | (t > 1)
    if bad.any():
        raise ValueError(
            f"cam_thresholds must be finite and in [0, 1]; got {t[bad][:5].tolist()} "
            f"at position(s) {np.flatnonzero(bad)[:5].tolist()}"
        )
    return t


def check_iou_percents(values):
    out = []
    for d in tuple(values):
        ok = (
            isinstance(d, (int, float, np.integer, np.floating))
            and not isinstance(d, bool)
            and np.isfinite(d)
            and float(d).is_integer()
            and 0 < d <= 100
        )
        if not ok:
            raise ValueError(
                f"iou_thresholds must be integer percents in (0, 100], got {d!r} "
                f"in {tuple(values)}"
            )
        out.append(int(d))
    if not out:
        raise ValueError("iou_thresholds is empty")
    return tuple(out)


def check_len(name, seq, n):
    if len(seq) != n:
        raise ValueError(f"{name} has {len(seq)} entries but there are {n} maps")
