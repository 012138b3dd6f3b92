"""SLT-Net's pseudo box: the extent of all pixels above the threshold, in-graph.

Guo et al., "Strengthen Learning Tolerance for Weakly Supervised Object
Localization", CVPR 2022, Sec. 3.1 (Eq. 3-4) trains the regressor on boxes
from the localizer's map; the paper leaves the box rule open. This in-graph
stand-in for the largest connected component (`graph.tf_largest_component_box`)
takes the extent of every foreground pixel, which is cheap inside `train_step`.
"""

import tensorflow as tf


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
