"""The synthetic benchmark as a :class:`~wsol_keras.data.pipeline.DataSource`."""

from __future__ import annotations

from typing import Dict

import numpy as np
import tensorflow as tf

from wsol_keras.data import synthetic
from wsol_keras.data.pipeline import MAX_BOXES
from wsol_keras.data.pipeline import DataSource


class SyntheticSource(DataSource):
    """Built-in part-domination benchmark (see :mod:`wsol_keras.data.synthetic`).

    Splits are rendered lazily on first use and cached in memory (numpy arrays,
    then ``tf.data.Dataset.from_tensor_slices``). The hierarchy has two ancestor
    levels: body-shape group, then supergroup (round / angular).
    """

    def __init__(self, data_config):
        cfg = data_config.synthetic
        synthetic._validate(cfg)  # fail early on bad knobs
        ng, cpg = int(cfg.num_groups), int(cfg.classes_per_group)
        super().__init__(
            synthetic.class_names(ng, cpg),
            synthetic.hierarchy(ng, cpg),
            synthetic.SPLITS,
            int(data_config.image_size),
        )
        self._cfg = cfg
        self._arrays: Dict[str, Dict[str, np.ndarray]] = {}

    def arrays(self, split: str) -> Dict[str, np.ndarray]:
        """Raw numpy arrays of a split, including ``part_mask`` (see synthetic.generate)."""
        self._check_split(split)
        if split not in self._arrays:
            self._arrays[split] = synthetic.generate(self._cfg, split, self.image_size)
        return self._arrays[split]

    def num_examples(self, split: str) -> int:
        self._check_split(split)
        return int(self._cfg[f"num_{split}"])

    def dataset(self, split: str) -> tf.data.Dataset:
        a = self.arrays(split)
        n = len(a["label"])
        boxes = -np.ones((n, MAX_BOXES, 4), np.float32)
        boxes[:, 0] = a["box"]
        return tf.data.Dataset.from_tensor_slices(
            {
                "image": a["image"],
                "label": a["label"],
                "hierarchy": self.hierarchy[a["label"]],
                "boxes": boxes,
                "num_boxes": np.ones((n,), np.int32),
                "mask": a["mask"],
                "has_mask": np.ones((n,), bool),
                "image_id": a["image_id"].astype(str),
                # rendered at S x S: the original size is the delivered one
                "original_size": np.full((n, 2), self.image_size, np.int32),
            }
        )
