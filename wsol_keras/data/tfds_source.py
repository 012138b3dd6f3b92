"""TensorFlow Datasets builders as data sources (``data.name="tfds"``).

``data.tfds_name`` picks the builder (``caltech_birds2011``, ``voc/2007``,
``voc/2012``, ``coco/2017``, ``coco/2014``; any builder with the same features
works), ``data.data_dir`` where it was prepared (``""`` = TFDS's default,
``~/tensorflow_datasets``), ``data.split_map`` the splits (contract name = TFDS
split expression, e.g. ``train=train+validation,test=test``; defaults below;
for ``voc`` VOC's image-set names ``trainval`` / ``val`` also work, so the VOC
folder config reads TFDS too).

Element conversion (exact, no re-estimation):

* TFDS boxes are normalized ``(ymin, xmin, ymax, xmax)``; the contract's boxes
  are ``xyxy`` pixels of the S x S image: ``(xmin*W, ymin*H, xmax*W, ymax*H)``
  in original pixels, then scaled by S/W, S/H like every other source. For
  ``caltech_birds2011`` TFDS stores CUB's ``(x/W, y/H, (x+w)/W, (y+h)/H)``, so the
  boxes equal the raw CUB source's ``(x, y, x+w, y+h)``; for ``voc`` the XML's
  numbers, as :mod:`wsol_keras.data.voc`.
* ``caltech_birds2011``'s ``segmentation_mask`` (CUB's soft 0-255 masks) becomes
  the mask, foreground > 127 as the raw CUB source: PxAP works.
* ``voc`` / ``coco`` give the multi-label element (:mod:`wsol_keras.data.multilabel`);
  VOC's ``is_difficult`` and COCO's ``is_crowd`` fill ``object_difficult``.
* Class names come from the builder's ClassLabel feature (COCO: the category
  names, once prepared; caltech_birds2011 ships none: "0".."199", in CUB's class
  order, label = CUB class id - 1, so a CUB ``hierarchy.txt`` applies unchanged).

A builder that is not prepared raises with the ``tfds build`` command to run,
unless ``data.tfds_download=True`` (then TFDS downloads and prepares it).
"""

from __future__ import annotations

from typing import Dict

import numpy as np
import tensorflow as tf

from wsol_keras.data import hierarchy as hier_lib
from wsol_keras.data import multilabel as ml
from wsol_keras.data.pipeline import DataSource
from wsol_keras.data.pipeline import MAX_BOXES
from wsol_keras.data.pipeline import resize_image
from wsol_keras.data.pipeline import scale_boxes
from wsol_keras.data.voc import parse_split_map

# Contract split -> TFDS split. caltech_birds2011 has no val split: val = test,
# what the CUB papers effectively did (see wsol_keras.data.cub for the caveat).
DEFAULT_SPLIT_MAPS = {
    "caltech_birds2011": "train=train,val=test,test=test",
    "voc": "train=train+validation,val=validation,test=test",
    "coco": "train=train,val=validation,test=validation",
}
# VOC's image-set names (ImageSets/Main/*.txt, what configs/voc07_vgg16_spn.py
# names for the folder source) -> TFDS voc's split names, so one config reads
# both sources.
VOC_IMAGE_SET_ALIASES = {"trainval": "train+validation", "val": "validation"}
MASK_THRESHOLD = 127  # CUB's soft masks: foreground > 0.5 of 255


def _family(name: str) -> str:
    return name.split("/")[0].split(":")[0]


def _builder(name: str, data_dir: str, download: bool):
    import tensorflow_datasets as tfds  # heavy import, only for this source

    try:
        builder = tfds.builder(name, data_dir=data_dir or None)
    except Exception as e:  # DatasetNotFoundError and config errors
        raise ValueError(
            f"data.tfds_name={name!r}: TFDS has no such builder/config ({e})"
        ) from None
    if download:
        builder.download_and_prepare()
    return builder


def _unprepared_message(name: str, data_dir: str, err: Exception) -> str:
    where = f"--data_dir={data_dir} " if data_dir else ""
    return (
        f"TFDS data set {name!r} is not prepared in "
        f"{data_dir or '~/tensorflow_datasets (default data_dir)'}: run "
        f"`tfds build {name} {where}` (manual downloads: see the builder's "
        "page), set --config.data.data_dir to where it was built, or pass "
        f"--config.data.tfds_download=True. ({type(err).__name__}: {err})"
    )


class TFDSSource(DataSource):
    """A TFDS builder as a contract source (see the module docstring)."""

    def __init__(self, data_config):
        name = str(data_config.tfds_name)
        if not name:
            raise ValueError("data.name='tfds' needs data.tfds_name, e.g. caltech_birds2011")
        family = _family(name)
        data_dir = str(data_config.data_dir or "")
        builder = _builder(name, data_dir, bool(data_config.tfds_download))
        features = builder.info.features
        self.multi_label = "objects" in features
        if self.multi_label:
            names = list(features["objects"]["label"].names)
        elif "label" in features:
            names = list(features["label"].names)
        else:
            raise ValueError(
                f"TFDS builder {name!r} has neither 'label' nor 'objects' features"
            )
        if not self.multi_label and "bbox" not in features:
            raise ValueError(f"TFDS builder {name!r} has no 'bbox' feature: no boxes to evaluate")
        split_text = str(data_config.split_map or DEFAULT_SPLIT_MAPS.get(family, "train=train,test=test"))
        self._split_map = parse_split_map(split_text, "data.split_map")
        if family == "voc":
            self._split_map = {
                split: VOC_IMAGE_SET_ALIASES.get(tfds_split, tfds_split)
                for split, tfds_split in self._split_map.items()
            }
        self._raw: Dict[str, tf.data.Dataset] = {}
        for split, tfds_split in self._split_map.items():
            try:
                self._raw[split] = builder.as_dataset(split=tfds_split, shuffle_files=False)
            except (AssertionError, FileNotFoundError, tf.errors.NotFoundError) as e:
                raise FileNotFoundError(_unprepared_message(name, data_dir, e)) from None
            except ValueError as e:  # unknown split name or bad slicing
                raise ValueError(
                    f"data.split_map: split {tfds_split!r} of {name!r}: {e}"
                ) from None
        if self.multi_label:
            hierarchy = np.zeros((len(names), 0), np.int32)
        else:
            # caltech_birds2011: label = CUB class id - 1 (hierarchy.txt uses CUB ids).
            offset = 1 if family == "caltech_birds2011" else 0
            class_ids = list(range(offset, len(names) + offset))
            hierarchy = hier_lib.resolve_hierarchy(
                class_ids, names, str(data_config.hierarchy_file), []
            )
        super().__init__(names, hierarchy, tuple(self._split_map), int(data_config.image_size))
        self._builder = builder
        self._counts: Dict[str, int] = {}

    def num_examples(self, split: str) -> int:
        self._check_split(split)
        if split not in self._counts:
            n = int(self._raw[split].cardinality().numpy())
            if n < 0:  # unknown (e.g. mocked data): count once
                n = int(self._raw[split].reduce(0, lambda c, _: c + 1).numpy())
            self._counts[split] = n
        return self._counts[split]

    def dataset(self, split: str) -> tf.data.Dataset:
        self._check_split(split)
        convert = self._multi_label_element if self.multi_label else self._single_label_element
        return self._raw[split].map(convert, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    def _single_label_element(self, ex):
        size = self.image_size
        image = ex["image"]
        shape = tf.shape(image)
        h, w = shape[0], shape[1]
        label = tf.cast(ex["label"], tf.int32)
        box = _yxyx_to_xyxy_px(tf.reshape(ex["bbox"], [1, 4]), h, w)
        boxes = tf.concat([box, -tf.ones([MAX_BOXES - 1, 4], tf.float32)], 0)
        if "segmentation_mask" in ex:
            m = tf.image.resize(ex["segmentation_mask"], [size, size], method="nearest")
            mask, has_mask = tf.cast(m[..., 0] > MASK_THRESHOLD, tf.uint8), tf.constant(True)
        else:
            mask, has_mask = tf.zeros([size, size], tf.uint8), tf.constant(False)
        return {
            "image": tf.ensure_shape(resize_image(image, size), [size, size, 3]),
            "label": label,
            "hierarchy": tf.gather(tf.constant(self.hierarchy), label),
            "boxes": scale_boxes(boxes, tf.constant(1), h, w, size),
            "num_boxes": tf.constant(1, tf.int32),
            "mask": tf.ensure_shape(mask, [size, size]),
            "has_mask": has_mask,
            "image_id": _image_id(ex),
        }

    def _multi_label_element(self, ex):
        obj = ex["objects"]
        image = ex["image"]
        shape = tf.shape(image)
        flag = obj["is_difficult"] if "is_difficult" in obj else obj["is_crowd"]
        # Real TFDS data has one row per object in every field; clip to the
        # shortest so randomly sized mock sequences still line up.
        k = tf.reduce_min(tf.stack([tf.shape(obj["label"])[0], tf.shape(obj["bbox"])[0], tf.shape(flag)[0]]))
        boxes = _yxyx_to_xyxy_px(obj["bbox"][:k], shape[0], shape[1])
        return ml.make_multilabel_element(
            image, obj["label"][:k], boxes, flag[:k], _image_id(ex), self.image_size, self.num_classes
        )


def _image_id(ex) -> tf.Tensor:
    return ex["image/filename"] if "image/filename" in ex else tf.constant("")


def _yxyx_to_xyxy_px(bbox: tf.Tensor, h, w) -> tf.Tensor:
    """Normalized [K, 4] (ymin, xmin, ymax, xmax) -> [K, 4] xyxy original pixels."""
    b = tf.cast(tf.reshape(bbox, [-1, 4]), tf.float32)
    hf, wf = tf.cast(h, tf.float32), tf.cast(w, tf.float32)
    return tf.stack([b[:, 1] * wf, b[:, 0] * hf, b[:, 3] * wf, b[:, 2] * hf], axis=1)
