"""SLT-Net's pseudo box from the localizer's map, in-graph.

Guo et al., "Strengthen Learning Tolerance for Weakly Supervised Object
Localization", CVPR 2022, Sec. 3.1 (Eq. 3-4) trains the regressor on boxes
from the localizer's map, and Sec. 3.2 gives the box rule of its CAM baseline:
threshold the map and take "the bounding box that covers the largest connected
component". `component_box_from_maps` is that rule (the box the evaluator
draws from the same map, `graph.tf_largest_component_box`), normalized.
`extent_box_from_maps` (the extent of every pixel above the threshold) is
cheaper but any isolated response elsewhere in the image stretches it: on
scenes with clutter it degenerates to the whole image.

Both return normalized xyxy, pixel / (S - 1), the frame in which the
evaluator scales a regressor's boxes back (`wsol_keras.evaluation.protocol`).
"""

import tensorflow as tf

from wsol_keras.localization.boxes.graph import tf_largest_component_box

PSEUDO_BOX_RULES = ("component", "extent")


def extent_box_from_maps(maps, threshold):
    """In-graph box of the thresholded map's extent, normalized xyxy.

    Args:
        maps: ``[B, H, W]`` maps already min-max normalized to [0, 1].
        threshold: scalar; pixels ``>= threshold`` are foreground.

    Returns:
        float32 ``[B, 4]`` ``(x1, y1, x2, y2) / (W - 1, H - 1, W - 1, H - 1)``
        (inclusive pixel ends); ``[0, 0, 1, 1]`` for a map without foreground.
    """
    maps = tf.convert_to_tensor(maps, tf.float32)
    height, width = maps.shape[1], maps.shape[2]
    fg = maps >= threshold
    cols = tf.reduce_any(fg, axis=1)  # [B, W]
    rows = tf.reduce_any(fg, axis=2)  # [B, H]

    def first_last(any_along, size):
        idx = tf.range(size, dtype=tf.float32)
        big = float(size)
        first = tf.reduce_min(tf.where(any_along, idx, big), axis=-1)
        last = tf.reduce_max(tf.where(any_along, idx, -1.0), axis=-1)
        return first, last

    x1, x2 = first_last(cols, width)
    y1, y2 = first_last(rows, height)
    has_fg = tf.reduce_any(cols, axis=-1)
    box = tf.stack(
        [
            x1 / (width - 1.0),
            y1 / (height - 1.0),
            x2 / (width - 1.0),
            y2 / (height - 1.0),
        ],
        axis=-1,
    )
    full = tf.constant([0.0, 0.0, 1.0, 1.0], tf.float32)
    return tf.where(has_fg[:, None], box, full[None, :])


def component_box_from_maps(maps, threshold):
    """In-graph box of the largest connected component, normalized xyxy.

    The CAM box rule (SLT-Net Sec. 3.2; wsolevaluation's largest contour):
    quantized map, foreground ``int(255 m) > int(threshold * max)``, the box of
    the largest 8-connected component in the evaluator's pixel convention
    (`graph.tf_largest_component_box`), divided by (W - 1, H - 1).

    Args:
        maps: ``[B, H, W]`` maps already min-max normalized to [0, 1].
        threshold: scalar in [0, 1].

    Returns:
        float32 ``[B, 4]``; ``[0, 0, 1, 1]`` for a map without foreground
        (a constant map).
    """
    maps = tf.convert_to_tensor(maps, tf.float32)
    height, width = maps.shape[1], maps.shape[2]
    box = tf_largest_component_box(maps, threshold, criterion="area")
    has_fg = tf.reduce_any(box > 0.0, axis=-1)
    scale = tf.constant(
        [width - 1.0, height - 1.0, width - 1.0, height - 1.0], tf.float32
    )
    full = tf.constant([0.0, 0.0, 1.0, 1.0], tf.float32)
    return tf.where(has_fg[:, None], box / scale, full[None, :])


def pseudo_box_from_maps(maps, threshold, rule="component"):
    """`component_box_from_maps` or `extent_box_from_maps` by ``rule``."""
    if rule == "component":
        return component_box_from_maps(maps, threshold)
    if rule == "extent":
        return extent_box_from_maps(maps, threshold)
    raise ValueError(f"pseudo box rule={rule!r}: expected one of {PSEUDO_BOX_RULES}")
