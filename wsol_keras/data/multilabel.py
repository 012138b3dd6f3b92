"""The multi-label element (VOC / COCO style): several classes and objects per image.

A multi-label source (``source.multi_label == True``) yields the contract element
of :mod:`wsol_keras.data` with two differences and a few extra fields::

    "label":            int32 [C]  multi-hot: 1 for every class with a
                                   non-difficult object in the image. The
                                   released SPN.pytorch trains on exactly this
                                   (engine.py maps VOC's -1 to 0 and keeps the
                                   0 "difficult only" state as 0, a negative)
    "hierarchy":        int32 [0]  (no class hierarchy)
    "boxes", "num_boxes"           the first MAX_BOXES objects (contract shape, so
                                   the shared augmentation applies)
    "object_boxes":     float32 [MAX_OBJECTS, 4] xyxy px at S x S (-1 padded)
    "object_labels":    int32 [MAX_OBJECTS] class id per object (-1 padded)
    "object_difficult": bool [MAX_OBJECTS] VOC ``difficult`` flag (COCO: is_crowd)
    "num_objects":      int32 []
    "original_size":    int32 [2] (height, width) of the decoded image, to map
                                   boxes back for evaluation at the original size

The ``object_*`` fields are evaluation fields: training augmentation (crops,
flips) does not move them. "mask" is all zeros and "has_mask" False. Objects past
MAX_OBJECTS are dropped from the ``object_*`` fields (never from "label"); the
folder source logs how many images that affects. COCO's ``is_crowd`` plays
VOC's ``difficult`` role (a crowd region alone does not make a class positive).
"""

from __future__ import annotations

from typing import Dict

import numpy as np
import tensorflow as tf

from wsol_keras.data.pipeline import MAX_BOXES
from wsol_keras.data.pipeline import resize_image

# VOC 2007 has at most 42 objects in an image, COCO 2017 train 93.
MAX_OBJECTS = 64

# The 20 PASCAL VOC classes in the devkit's (alphabetical) order, as TFDS's voc.
VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
    "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
    "sheep", "sofa", "train", "tvmonitor",
)


def multilabel_element_spec(image_size: int, num_classes: int) -> Dict[str, tf.TensorSpec]:
    s = int(image_size)
    return {
        "image": tf.TensorSpec([s, s, 3], tf.uint8),
        "label": tf.TensorSpec([num_classes], tf.int32),
        "hierarchy": tf.TensorSpec([0], tf.int32),
        "boxes": tf.TensorSpec([MAX_BOXES, 4], tf.float32),
        "num_boxes": tf.TensorSpec([], tf.int32),
        "mask": tf.TensorSpec([s, s], tf.uint8),
        "has_mask": tf.TensorSpec([], tf.bool),
        "image_id": tf.TensorSpec([], tf.string),
        "object_boxes": tf.TensorSpec([MAX_OBJECTS, 4], tf.float32),
        "object_labels": tf.TensorSpec([MAX_OBJECTS], tf.int32),
        "object_difficult": tf.TensorSpec([MAX_OBJECTS], tf.bool),
        "num_objects": tf.TensorSpec([], tf.int32),
        "original_size": tf.TensorSpec([2], tf.int32),
    }


def _pad(x: tf.Tensor, n: int, value) -> tf.Tensor:
    x = x[:n]
    pad = n - tf.shape(x)[0]
    paddings = [[0, pad]] + [[0, 0]] * (len(x.shape) - 1)
    return tf.pad(x, paddings, constant_values=value)


def make_multilabel_element(
    image: tf.Tensor,
    label_ids: tf.Tensor,
    boxes_px: tf.Tensor,
    difficult: tf.Tensor,
    image_id: tf.Tensor,
    size: int,
    num_classes: int,
) -> Dict[str, tf.Tensor]:
    """Builds the element from a decoded image and its objects (in graph).

    Args:
      image: uint8 [H, W, 3].
      label_ids: int [K] class id per object (all K objects, for the multi-hot).
      boxes_px: float [K, 4] xyxy in the original image's pixels.
      difficult: bool [K].
      image_id: string [].
      size: S.
      num_classes: C.
    """
    shape = tf.shape(image)
    h, w = shape[0], shape[1]
    label_ids = tf.cast(tf.reshape(label_ids, [-1]), tf.int32)
    difficult = tf.cast(tf.reshape(difficult, [-1]), tf.bool)
    # Difficult objects do not make their class positive (see the docstring).
    counted = tf.where(difficult, tf.zeros_like(label_ids), tf.ones_like(label_ids))
    multi_hot = tf.reduce_max(
        tf.concat(
            [
                tf.one_hot(label_ids, num_classes, dtype=tf.int32) * counted[:, None],
                tf.zeros([1, num_classes], tf.int32),
            ],
            0,
        ),
        axis=0,
    )
    sx = tf.cast(size, tf.float32) / tf.cast(w, tf.float32)
    sy = tf.cast(size, tf.float32) / tf.cast(h, tf.float32)
    scaled = tf.reshape(tf.cast(boxes_px, tf.float32), [-1, 4]) * tf.stack([sx, sy, sx, sy])
    k = tf.shape(label_ids)[0]
    return {
        "image": tf.ensure_shape(resize_image(image, size), [size, size, 3]),
        "label": tf.ensure_shape(multi_hot, [num_classes]),
        "hierarchy": tf.zeros([0], tf.int32),
        "boxes": tf.ensure_shape(_pad(scaled, MAX_BOXES, -1.0), [MAX_BOXES, 4]),
        "num_boxes": tf.minimum(k, MAX_BOXES),
        "mask": tf.zeros([size, size], tf.uint8),
        "has_mask": tf.constant(False),
        "image_id": image_id,
        "object_boxes": tf.ensure_shape(_pad(scaled, MAX_OBJECTS, -1.0), [MAX_OBJECTS, 4]),
        "object_labels": tf.ensure_shape(_pad(label_ids, MAX_OBJECTS, -1), [MAX_OBJECTS]),
        "object_difficult": tf.ensure_shape(
            _pad(tf.cast(tf.reshape(difficult, [-1]), tf.bool), MAX_OBJECTS, False),
            [MAX_OBJECTS],
        ),
        "num_objects": tf.minimum(k, MAX_OBJECTS),
        "original_size": tf.stack([h, w]),
    }


def check_single_label_method(method_name: str, multi_label_method: bool, data_info) -> None:
    """Raises when a single-label method is about to train on multi-label data.

    Args:
      method_name: config.method.name.
      multi_label_method: whether the method was configured for multi-hot labels
        (SPN with ``method.multi_label=True``; the only one today).
      data_info: dict with an optional "multi_label" entry (False if absent).
    """
    if data_info.get("multi_label") and not multi_label_method:
        raise ValueError(
            f"method {method_name!r} is single-label (softmax over one class per "
            "image, one map chosen by that label) but the data is multi-label "
            "(several classes per image: VOC / COCO). Use method.name='spn' with "
            "--config.method.multi_label=True (configs/voc07_vgg16_spn.py), or a "
            "single-label data set."
        )


def truncation_note(counts: np.ndarray) -> int:
    """Number of images whose objects exceed MAX_OBJECTS."""
    return int((np.asarray(counts) > MAX_OBJECTS).sum())
