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
`wsol_keras.localization.maps` and the exported graphs all call these functions.
Class selection is a one-hot contraction rather than a batched gather so the
same ops convert to TFLite builtins.
"""

import numpy as np
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


def cv2_cubic_matrix(n_out, n_in, a=-0.75):
    """[n_out, n_in] weights of cv2.resize's INTER_CUBIC along one axis.

    Half-pixel centers (src = (dst + 0.5) * n_in / n_out - 0.5), Keys kernel
    with cv2's a = -0.75 (tf.image.resize "bicubic" uses a = -0.5), source
    indices clamped at the border.  Upscaling only (cv2 switches to area-like
    behaviour when shrinking).
    """
    if n_out < n_in:
        raise ValueError(f"cv2_cubic_matrix: upscaling only, got {n_in} -> {n_out}")
    m = np.zeros((n_out, n_in), np.float64)
    scale = n_in / n_out
    for d in range(n_out):
        f = (d + 0.5) * scale - 0.5
        s = int(np.floor(f))
        x = f - s
        c0 = ((a * (x + 1) - 5 * a) * (x + 1) + 8 * a) * (x + 1) - 4 * a
        c1 = ((a + 2) * x - (a + 3)) * x * x + 1
        c2 = ((a + 2) * (1 - x) - (a + 3)) * (1 - x) * (1 - x) + 1
        for k, c in zip(range(-1, 3), (c0, c1, c2, 1 - c0 - c1 - c2)):
            m[d, min(max(s + k, 0), n_in - 1)] += c
    return m.astype(np.float32)


UPSAMPLE_METHODS = ("cv2_bicubic", "bilinear")


def upsample_maps(maps, size, method="bilinear"):
    """Resize of [B, h, w] (or channels-last [B, h, w, C]) maps.

    Args:
        maps: rank-3 or rank-4 maps.
        size: int or (height, width).
        method: "bilinear" (keras.ops.image.resize) or "cv2_bicubic": exactly
            `cv2.resize(..., interpolation=cv2.INTER_CUBIC)` per map, as
            wsolevaluation upsamples score maps (Choe et al., CVPR 2020,
            `inference.py`), written as two constant matrix products so it runs
            in a SavedModel and in LiteRT (rank-3 maps, upscaling only).
    """
    size = (int(size), int(size)) if isinstance(size, int) else tuple(size)
    if method == "cv2_bicubic":
        if len(maps.shape) != 3:
            raise ValueError(f"cv2_bicubic upsampling takes [B, h, w] maps, got {maps.shape}")
        ay = cv2_cubic_matrix(size[0], int(maps.shape[1]))
        ax = cv2_cubic_matrix(size[1], int(maps.shape[2]))
        return ops.einsum("Hh,bhw,Ww->bHW", ay, ops.cast(maps, "float32"), ax)
    if method != "bilinear":
        raise ValueError(f"upsample method={method!r}: expected one of {UPSAMPLE_METHODS}")
    if len(maps.shape) == 4:
        return ops.image.resize(maps, size, interpolation="bilinear")
    return ops.image.resize(maps[..., None], size, interpolation="bilinear")[..., 0]


def localization_maps(cams, class_ids, size):
    """Selects, upsamples and normalizes: [B, h, w, C] -> [B, H, W] in [0, 1]."""
    return normalize_maps(upsample_maps(select_class_maps(cams, class_ids), size))


def _align_corners_matrix(n_out, n_in):
    """[n_out, n_in] linear-interpolation weights with align_corners=True."""
    a = np.zeros((n_out, n_in), np.float32)
    if n_in == 1 or n_out == 1:
        a[:, 0] = 1.0
        return a
    pos = np.arange(n_out) * (n_in - 1) / (n_out - 1)
    lo = np.minimum(np.floor(pos).astype(int), n_in - 2)
    frac = (pos - lo).astype(np.float32)
    a[np.arange(n_out), lo] = 1.0 - frac
    a[np.arange(n_out), lo + 1] += frac
    return a


def resize_align_corners(maps, size):
    """Bilinear resize of [B, h, w, C] maps with corners aligned (torch's
    `F.upsample(mode='bilinear', align_corners=True)`, which the released DANet
    evaluation uses); Keras' resize uses half-pixel centers instead.  Two
    constant matmuls, so it also converts to LiteRT."""
    h, w = maps.shape[1], maps.shape[2]
    if (h, w) == tuple(size):
        return maps
    ay = ops.convert_to_tensor(_align_corners_matrix(size[0], h))
    ax = ops.convert_to_tensor(_align_corners_matrix(size[1], w))
    maps = ops.einsum("Hh,bhwc->bHwc", ay, maps)
    return ops.einsum("Ww,bHwc->bHWc", ax, maps)
