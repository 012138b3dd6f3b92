"""Per-image tf.data functions of file sources: decode, resize, boxes, masks.

A metadata row (path, label, boxes, masks) becomes a contract element (see
:mod:`wsol_keras.data`): a direct resize of the whole image to S x S (bilinear,
antialiased, as wsolevaluation's PIL resize), boxes scaled by S/w and S/h,
instance masks resized with nearest neighbour, OR-ed, ignore pixels 255.
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np
import tensorflow as tf
from absl import logging

MAX_BOXES = 16

# TensorFlow's wrapping of an op's error: "{{function_node __wrapped__Op_device_
# /job:...}} <what happened> [Op:DecodeImage] name: ".
_TF_ERROR_WRAPPING = re.compile(r"\{\{function_node [^}]*\}\}|\[Op:[^\]]*\](\s*name:.*)?")


def decode_error_text(error) -> str:
    """The reason of a failed decode, as one line without TF's op wrapping."""
    text = str(getattr(error, "message", "") or error)
    text = _TF_ERROR_WRAPPING.sub(" ", text)
    text = " ".join(text.split()).strip()
    return text or type(error).__name__


def decode_rgb(path: tf.Tensor) -> tf.Tensor:
    return tf.io.decode_image(
        tf.io.read_file(path), channels=3, expand_animations=False, dtype=tf.uint8
    )


def resize_image(image: tf.Tensor, size: int) -> tf.Tensor:
    """Direct resize to size x size (bilinear, antialiased), uint8 out."""
    out = tf.image.resize(image, [size, size], method="bilinear", antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(out), 0, 255), tf.uint8)


def scale_boxes(boxes: tf.Tensor, num_boxes: tf.Tensor, height, width, size: int):
    """Scales the first num_boxes rows of [MAX_BOXES, 4] xyxy by S/w, S/h; rest -1."""
    sx = tf.cast(size, tf.float32) / tf.cast(width, tf.float32)
    sy = tf.cast(size, tf.float32) / tf.cast(height, tf.float32)
    scaled = boxes * tf.stack([sx, sy, sx, sy])
    valid = tf.range(MAX_BOXES) < num_boxes
    return tf.where(valid[:, None], scaled, -tf.ones_like(boxes))


def _load_binary_mask(path: tf.Tensor, size: int, threshold: int) -> tf.Tensor:
    m = tf.io.decode_image(
        tf.io.read_file(path), channels=1, expand_animations=False, dtype=tf.uint8
    )
    m = tf.image.resize(m, [size, size], method="nearest")
    return tf.cast(m[..., 0] > threshold, tf.bool)


def hierarchy_table(hierarchy) -> np.ndarray:
    return np.asarray(hierarchy, np.int32).reshape(len(hierarchy), -1)


def has_any_mask(rec) -> bool:
    """Whether any image of the split lists a mask (else mask work is skipped)."""
    return bool(
        np.any(rec.mask_paths.astype(str) != "")
        or np.any(rec.ignore_paths.astype(str) != "")
    )


def make_mask_loader(size: int, threshold: int):
    """fn(mask_paths [M], ignore_path) -> (uint8 [size, size] 0/1/255, has_mask)."""

    def one_mask(p):
        return tf.cond(
            tf.strings.length(p) > 0,
            lambda: _load_binary_mask(p, size, threshold),
            lambda: tf.zeros([size, size], tf.bool),
        )

    def load(mask_paths, ignore_path):
        num_masks = tf.reduce_sum(tf.cast(tf.strings.length(mask_paths) > 0, tf.int32))
        fg = tf.reduce_any(
            tf.map_fn(one_mask, mask_paths, fn_output_signature=tf.bool), 0
        )
        ignore = tf.logical_and(one_mask(ignore_path), tf.logical_not(fg))
        mask = tf.where(ignore, tf.constant(255, tf.uint8), tf.cast(fg, tf.uint8))
        return mask, num_masks > 0

    return load


def make_loader(size: int, hierarchy: np.ndarray, mask_threshold: int,
                with_masks: bool = True):
    """Returns a tf function mapping one Records row to a contract element.

    Args:
      size: output side S.
      hierarchy: int32 [C, L] class hierarchy.
      mask_threshold: a mask pixel is foreground when its value > this (CUB's soft
        masks: 127, i.e. > 0.5; wsolevaluation's OpenImages masks: 0).
      with_masks: False when the split lists no mask at all: the mask decoding
        graph is left out (zeros, has_mask False).
    """
    hier = tf.constant(hierarchy_table(hierarchy))
    load_mask = make_mask_loader(size, mask_threshold)

    def load(path, label, boxes, num_boxes, mask_paths, ignore_path, image_id):
        image = decode_rgb(path)
        shape = tf.shape(image)
        h, w = shape[0], shape[1]
        if with_masks:
            mask, has_mask = load_mask(mask_paths, ignore_path)
        else:
            mask, has_mask = tf.zeros([size, size], tf.uint8), tf.constant(False)
        return {
            "image": tf.ensure_shape(resize_image(image, size), [size, size, 3]),
            "label": tf.cast(label, tf.int32),
            "hierarchy": tf.gather(hier, label),
            "boxes": scale_boxes(boxes, num_boxes, h, w, size),
            "num_boxes": tf.cast(num_boxes, tf.int32),
            "mask": tf.ensure_shape(mask, [size, size]),
            "has_mask": has_mask,
            "image_id": image_id,
            "original_size": tf.stack([h, w]),
        }

    return load


def records_tensors(rec):
    """The per-image fields of ``rec`` as tensors, in the loaders' argument order."""
    return (
        tf.constant(rec.paths, tf.string),
        tf.constant(rec.labels, tf.int32),
        tf.constant(rec.boxes, tf.float32),
        tf.constant(rec.num_boxes, tf.int32),
        tf.constant(rec.mask_paths.astype(str), tf.string),
        tf.constant(rec.ignore_paths.astype(str), tf.string),
        tf.constant(rec.image_ids, tf.string),
    )




def mask_sizes(mask_paths: tf.Tensor, ignore_path: tf.Tensor) -> tf.Tensor:
    """int32 [M + 1, 2]: decoded (height, width) of each listed mask and of the
    ignore mask; (0, 0) where none is listed."""

    def size(p):
        return tf.cond(
            tf.strings.length(p) > 0,
            lambda: tf.shape(
                tf.io.decode_image(tf.io.read_file(p), channels=1, expand_animations=False)
            )[:2],
            lambda: tf.zeros([2], tf.int32),
        )

    paths = tf.concat([mask_paths, ignore_path[None]], 0)
    return tf.map_fn(size, paths, fn_output_signature=tf.TensorSpec([2], tf.int32))


def decode_pass(paths: Sequence[str], origin: Sequence[str], fatal: bool, scope: str):
    """Decodes every image once (in parallel, errors caught): (ok [N] bool,
    sizes [N, 2] decoded (height, width)). A failure is logged naming the
    file, its metadata line and the decoder's reason, and counted (or raises
    with ``fatal``), so an epoch never stops half-way on a bad file."""
    n = len(paths)
    ds = tf.data.Dataset.zip(
        (tf.data.Dataset.range(n), tf.data.Dataset.from_tensor_slices(tf.constant(list(paths) or [""])).take(n))
    ).map(lambda i, p: (i, tf.shape(decode_rgb(p))[:2]), num_parallel_calls=tf.data.AUTOTUNE)
    ok = np.zeros((n,), bool)
    sizes = np.zeros((n, 2), np.int64)
    for i, hw in ds.ignore_errors().as_numpy_iterator():
        ok[i], sizes[i] = True, hw
    bad = np.flatnonzero(~ok)
    for i in bad:
        msg = (f"cannot decode image {paths[i]} (listed at {origin[i]}): "
               f"{_decode_error(paths[i], [], '')}")
        if fatal:
            raise ValueError(msg + " [data.fatal_decode_errors=True]")
        logging.warning("skipping %s", msg)
    if len(bad):
        logging.warning("%s: skipped %d undecodable image(s) of %d", scope, len(bad), n)
    return ok, sizes


def _decode_error(path: str, mask_paths, ignore_path: str) -> str:
    """Eagerly re-decodes one failing example to report why (images and masks)."""
    for p in [path] + [m for m in list(mask_paths) + [ignore_path] if m]:
        try:
            tf.io.decode_image(tf.io.read_file(p), expand_animations=False)
        except (tf.errors.OpError, ValueError) as e:  # noqa: PERF203
            what = "image" if p == path else f"mask {p}"
            return f"{what}: {decode_error_text(e)}"
    return "unknown decode error"
