"""Training augmentation and evaluation preprocessing for contract elements.

The WSOL papers train on random 224 crops of images resized to 256 with random
horizontal flips (CAM, Zhou et al. 2016, Sec. 3; ACoL, Zhang et al. 2018, Sec. 4.1;
DANet, Xue et al. 2019, Sec. 4.1) and evaluate on a direct resize (wsolevaluation,
Choe et al. 2020). File sources (CUB, wsolevaluation metadata) build training
elements from the original image with one resize (``train_loader``); for sources
that only yield S x S images (synthetic, TFDS, VOC) :func:`train_augment`
re-scales by ``scale`` (256/224 by default) and crops S x S back out, keeping
boxes and masks consistent with the pixels. All randomness is stateless
and driven by a per-element ``seed`` (int [2]), so a pipeline is reproducible and
works inside ``tf.data.Dataset.map``.
"""

from __future__ import annotations

from typing import Dict, Optional

import tensorflow as tf

from wsol_keras.data.loaders import MAX_BOXES

DEFAULT_SCALE = 256.0 / 224.0


def _resize_crop(
    element: Dict[str, tf.Tensor], big: int, ox, oy
) -> Dict[str, tf.Tensor]:
    """Resizes the S x S element to big x big and crops S x S at (ox, oy)."""
    img = element["image"]
    s = img.shape[0]
    if s is None:
        raise ValueError("train_augment needs a static image size")
    out = dict(element)
    up = tf.image.resize(tf.cast(img, tf.float32), [big, big], method="bilinear")
    up = tf.slice(up, tf.stack([oy, ox, 0]), [s, s, 3])
    out["image"] = tf.cast(tf.clip_by_value(tf.round(up), 0, 255), tf.uint8)
    m = tf.image.resize(element["mask"][..., None], [big, big], method="nearest")
    out["mask"] = tf.slice(m, tf.stack([oy, ox, 0]), [s, s, 1])[..., 0]

    r = float(big) / float(s)
    out["boxes"], out["num_boxes"] = crop_boxes(
        element["boxes"] * r, element["num_boxes"], ox, oy, s
    )
    return out


def crop_boxes(boxes: tf.Tensor, num_boxes, ox, oy, s: int):
    """Shifts xyxy boxes into the S x S crop at (ox, oy), clips them to it, drops
    those that left it and moves the kept rows to the front (rest -1)."""
    off = tf.cast(tf.stack([ox, oy, ox, oy]), tf.float32)
    b = boxes - off
    valid = tf.range(MAX_BOXES) < tf.cast(num_boxes, tf.int32)
    hi = float(s - 1)
    inside = (b[:, 2] >= 0) & (b[:, 3] >= 0) & (b[:, 0] <= hi) & (b[:, 1] <= hi)
    keep = valid & inside
    b = tf.where(keep[:, None], tf.clip_by_value(b, 0.0, hi), -tf.ones_like(b))
    order = tf.argsort(tf.cast(tf.logical_not(keep), tf.int32), stable=True)
    return tf.gather(b, order), tf.reduce_sum(tf.cast(keep, tf.int32))


def hflip(element: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    """Mirrors image, mask and boxes (inclusive pixel coordinates: x -> S-1-x)."""
    out = dict(element)
    s = element["image"].shape[1]
    out["image"] = tf.reverse(element["image"], [1])
    out["mask"] = tf.reverse(element["mask"], [1])
    b = element["boxes"]
    flipped = tf.stack([s - 1 - b[:, 2], b[:, 1], s - 1 - b[:, 0], b[:, 3]], 1)
    valid = tf.range(MAX_BOXES) < tf.cast(element["num_boxes"], tf.int32)
    out["boxes"] = tf.where(valid[:, None], flipped, b)
    return out


def train_augment(
    element: Dict[str, tf.Tensor],
    seed,
    scale: float = DEFAULT_SCALE,
    flip: bool = True,
    brightness: float = 0.0,
    contrast: float = 0.0,
) -> Dict[str, tf.Tensor]:
    """Random resized crop (S*scale -> S), horizontal flip, optional colour jitter.

    Args:
      element: one contract element (unbatched), image S x S.
      seed: int32/int64 tensor [2] for the stateless random ops.
      scale: resize factor before the S x S crop (256/224 as the papers); 1.0
        disables cropping.
      flip: random horizontal flip with probability 0.5.
      brightness: max absolute brightness delta in [0, 255] pixel units (0 = off).
      contrast: max relative contrast change, e.g. 0.2 (0 = off).

    Returns:
      An element with the same structure, dtypes and shapes.
    """
    if scale < 1.0:
        raise ValueError(f"scale must be >= 1, got {scale}")
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 5)
    s = element["image"].shape[0]
    out = dict(element)
    big = int(round(s * scale))
    if big > s:
        ox = tf.random.stateless_uniform([], seeds[0], 0, big - s + 1, dtype=tf.int32)
        oy = tf.random.stateless_uniform([], seeds[1], 0, big - s + 1, dtype=tf.int32)
        out = _resize_crop(out, big, ox, oy)
    if flip:
        do = tf.random.stateless_uniform([], seeds[2]) < 0.5
        flipped = hflip(out)
        out = {k: tf.cond(do, lambda v=flipped[k]: v, lambda v=out[k]: v) for k in out}
    if brightness > 0 or contrast > 0:
        img = tf.cast(out["image"], tf.float32)
        if contrast > 0:
            c = tf.random.stateless_uniform([], seeds[3], 1 - contrast, 1 + contrast)
            mean = tf.reduce_mean(img)
            img = (img - mean) * c + mean
        if brightness > 0:
            img = img + tf.random.stateless_uniform(
                [], seeds[4], -brightness, brightness
            )
        out["image"] = tf.cast(tf.clip_by_value(tf.round(img), 0, 255), tf.uint8)
    return out


def eval_preprocess(
    element: Dict[str, tf.Tensor], center_crop_scale: Optional[float] = None
) -> Dict[str, tf.Tensor]:
    """Evaluation preprocessing matching :func:`train_augment`.

    Args:
      element: one contract element.
      center_crop_scale: None (default) keeps the direct S x S resize, as
        wsolevaluation evaluates; a value like 256/224 resizes by it and takes
        the centre S x S crop (the papers' single-crop testing).
    """
    if center_crop_scale is None or center_crop_scale == 1.0:
        return dict(element)
    s = element["image"].shape[0]
    big = int(round(s * center_crop_scale))
    off = (big - s) // 2
    return _resize_crop(
        element, big, tf.constant(off, tf.int32), tf.constant(off, tf.int32)
    )


def augment_dataset(
    ds: tf.data.Dataset, seed: int, skip: int = 0, **kwargs
) -> tf.data.Dataset:
    """Maps :func:`train_augment` over ``ds`` with reproducible per-element seeds.

    Seeds differ between epochs (each new iteration re-randomizes) but the whole
    sequence is a function of ``seed``. ``skip`` drops the first elements
    together with their seeds, before augmenting them (a resumed training run
    continues the stream exactly where it stopped).
    """
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    pairs = tf.data.Dataset.zip((ds, seeds))
    if skip:
        pairs = pairs.skip(skip)
    return pairs.map(
        lambda e, sd: train_augment(e, sd, **kwargs),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
