"""Class-map primitives in `keras.ops` (backend-agnostic): the only copy.

A model's class maps [B, h, w, C] become one localization map per image by
    * selecting a class's map, or the mean of the maps of K classes
      (`select_class_maps`; the top-K average of SLT-Net, Guo et al.,
      "Strengthen Learning Tolerance for Weakly Supervised Object
      Localization", CVPR 2022, Eq. 9, with ids from `topk_class_ids`);
    * bilinear upsampling (`upsample_maps`);
    * per-image min-max normalization (`normalize_maps`): a constant map or a
      map with a non-finite value becomes all zeros, as wsolevaluation's
      `normalize_scoremap` (Choe et al., "Evaluating Weakly Supervised Object
      Localization Methods Right", CVPR 2020, Sec. 4).
Layers, models (ACoL's fused maps, DANet's level sum, SLT-Net's pseudo box),
`wsol_keras.localization` and the exported graphs all call these functions.
Class selection is a one-hot contraction rather than a batched gather so the
same ops convert to TFLite builtins.
"""

from keras import ops


def select_class_maps(cams, class_ids):
    """Gathers per-image maps.

    Args:
        cams: [B, h, w, C] class maps.
        class_ids: int [B] (one class per image) or [B, K] (mean of K maps).

    Returns:
        [B, h, w] maps (dtype of `cams`).
    """
    cams = ops.convert_to_tensor(cams)
    class_ids = ops.cast(class_ids, "int32")
    if len(class_ids.shape) == 1:
        class_ids = class_ids[:, None]
    weights = ops.mean(
        ops.one_hot(class_ids, ops.shape(cams)[-1], dtype=cams.dtype), axis=1
    )  # [B, C], 1/K on the selected classes
    return ops.einsum("bhwc,bc->bhw", cams, weights)


def topk_class_ids(logits, k):
    """int32 [B, k] ids of the k highest logits, best first (ties: lower id)."""
    return ops.cast(ops.top_k(ops.cast(logits, "float32"), int(k))[1], "int32")


def top1_class_ids(logits):
    """int32 [B] id of the highest logit (top_k, not argmax: keras argmax adds a
    BitwiseAnd op LiteRT lacks)."""
    return topk_class_ids(logits, 1)[:, 0]


def normalize_maps(maps, axis=(1, 2)):
    """Per-image min-max normalization to [0, 1] over `axis` (float32 out).

    Constant maps and maps with a non-finite value become zeros.
    """
    maps = ops.cast(maps, "float32")
    lo = ops.min(maps, axis=axis, keepdims=True)
    hi = ops.max(maps, axis=axis, keepdims=True)
    span = hi - lo
    finite = ops.all(ops.isfinite(maps), axis=axis, keepdims=True)
    valid = ops.logical_and(finite, span > 0)
    safe = ops.where(valid, span, ops.ones_like(span))
    return ops.where(valid, (maps - lo) / safe, ops.zeros_like(maps))


def upsample_maps(maps, size):
    """Bilinear resize of [B, h, w] (or channels-last [B, h, w, C]) maps.

    Args:
        maps: rank-3 or rank-4 maps.
        size: int or (height, width).
    """
    size = (int(size), int(size)) if isinstance(size, int) else tuple(size)
    if len(maps.shape) == 4:
        return ops.image.resize(maps, size, interpolation="bilinear")
    return ops.image.resize(maps[..., None], size, interpolation="bilinear")[..., 0]


def localization_maps(cams, class_ids, size):
    """Selects, upsamples and normalizes: [B, h, w, C] -> [B, H, W] in [0, 1]."""
    return normalize_maps(upsample_maps(select_class_maps(cams, class_ids), size))
