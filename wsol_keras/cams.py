"""Class-map selection, upsampling and normalization.

The evaluator and the serving graph both turn a model's class maps
[B, h, w, C] into one localization map per image:
    * GT-known: the map of the ground-truth class;
    * top-1: the map of the predicted class;
    * top-K averaged (SLT-Net Eq. 9): the mean of the maps of the K classes with
        the highest logits.
Maps are upsampled (bilinear) to the evaluation size and min-max normalized
per image; a constant or non-finite map becomes all zeros, as in
wsolevaluation's `normalize_scoremap`.
"""

import tensorflow as tf


def select_class_maps(cams, class_ids):
    """Gathers per-image maps.

    Args:
        cams: [B, h, w, C] class maps.
        class_ids: [B] (one class per image) or [B, K] (mean over K classes).

    Returns:
        [B, h, w] maps.
    """
    cams = tf.convert_to_tensor(cams)
    class_ids = tf.cast(class_ids, tf.int32)
    if class_ids.shape.rank == 1:
        class_ids = class_ids[:, None]
    per_class = tf.gather(
        tf.transpose(cams, [0, 3, 1, 2]), class_ids, batch_dims=1
    )  # [B, K, h, w]
    return tf.reduce_mean(per_class, axis=1)


def topk_class_ids(logits, k):
    """[B, K] ids of the K highest logits (ties broken by the lower id)."""
    return tf.math.top_k(logits, k=k).indices


def normalize_maps(maps):
    """Min-max normalizes each [h, w] map of a [B, h, w] batch to [0, 1].

    Constant maps and maps with a non-finite value become zeros.
    """
    maps = tf.cast(maps, tf.float32)
    lo = tf.reduce_min(maps, axis=[1, 2], keepdims=True)
    hi = tf.reduce_max(maps, axis=[1, 2], keepdims=True)
    span = hi - lo
    finite = tf.reduce_all(tf.math.is_finite(maps), axis=[1, 2], keepdims=True)
    valid = tf.logical_and(finite, span > 0)
    safe = tf.where(valid, span, tf.ones_like(span))
    return tf.where(valid, (maps - lo) / safe, tf.zeros_like(maps))


def upsample_maps(maps, size):
    """Bilinear resize of [B, h, w] maps to `size` (int or (height, width))."""
    size = (size, size) if isinstance(size, int) else tuple(size)
    return tf.image.resize(maps[..., None], size, method="bilinear")[..., 0]


def localization_maps(cams, class_ids, size):
    """Selects, upsamples and normalizes: [B, h, w, C] -> [B, H, W] in [0, 1]."""
    return normalize_maps(upsample_maps(select_class_maps(cams, class_ids), size))
