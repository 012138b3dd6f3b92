"""Data sources for wsol_keras: one element structure for every data set.

Every source yields unbatched elements (after a direct resize to S x S)::

    {"image": uint8 [S,S,3] RGB, "label": int32 [], "hierarchy": int32 [L],
     "boxes": float32 [MAX_BOXES,4] xyxy px (rows past num_boxes = -1),
     "num_boxes": int32 [], "mask": uint8 [S,S] (1 fg, 0 bg, 255 ignore),
     "has_mask": bool [], "image_id": string [],
     "original_size": int32 [2] (height, width before the resize)}

Pick a source with ``get_source(data_config)``; ``data_config.name`` is one of
``"synthetic"`` (built-in benchmark, :mod:`wsol_keras.data.synthetic`), ``"cub"``
(CUB-200-2011 as released, :mod:`wsol_keras.data.cub`), ``"wsol_metadata"``
(wsolevaluation's metadata layout, :mod:`wsol_keras.data.wsol_metadata`),
``"tfds"`` (a TensorFlow Datasets builder, :mod:`wsol_keras.data.tfds_source`),
``"voc"`` (a PASCAL VOC folder, :mod:`wsol_keras.data.voc`), ``"folder"``
(your own images, one folder per class, :mod:`wsol_keras.data.folder`) or
``"pretrain"`` (a procedural 240-class set for pretraining backbones,
:mod:`wsol_keras.data.pretrain_source`).

VOC / COCO data (``voc``, and ``tfds`` with a voc/coco builder) is multi-label
(``source.multi_label``): "label" is multi-hot [C] and the element carries the
objects; see :mod:`wsol_keras.data.multilabel`.
"""

from __future__ import annotations

import ml_collections

from wsol_keras.data.pipeline import MAX_BOXES
from wsol_keras.data.pipeline import DataSource
from wsol_keras.data.hierarchy import cluster_hierarchy
from wsol_keras.data.hierarchy import read_hierarchy_file
from wsol_keras.data.augment import augment_dataset
from wsol_keras.data.augment import eval_preprocess
from wsol_keras.data.augment import train_augment
from wsol_keras.data.cub import CUBSource
from wsol_keras.data.synthetic_source import SyntheticSource
from wsol_keras.data.wsol_metadata import WSOLMetadataSource

SOURCES = ("synthetic", "cub", "wsol_metadata", "tfds", "voc", "folder", "pretrain")


def default_data_config() -> ml_collections.ConfigDict:
    """Defaults: the built-in synthetic benchmark at 64 x 64 (trains on a CPU).

    Fields (all overridable as ``--config.data.<field>=...``):
      name: "synthetic" | "cub" | "wsol_metadata" | "tfds" | "voc" | "folder" |
        "pretrain".
      root: image root (CUB: the folder holding images/ and the *.txt files;
        wsol_metadata: the folder image paths are relative to; folder: the
        folder of class folders, or of train/ val/ test/ holding them).
      metadata: wsol_metadata only: the metadata/<DATASET> folder with one
        sub-folder per split.
      mask_root: folder that mask paths are relative to ("" = root).
      image_size: S, output side of the direct resize.
      fatal_decode_errors: raise on an undecodable image instead of skipping it.
      validate_images: decode every image once up front (per split, on the first
        ``dataset()`` call) so bad images are skipped *and counted*; if False, bad
        images are dropped inside tf.data (logged by TF, not counted) unless
        fatal_decode_errors.
      hierarchy_file: explicit hierarchy file ("" = look for hierarchy.txt in
        metadata, then root; else build one automatically).
      cub_val: CUB only: "holdout" (val = val_per_class training images per
        class, fixed seed, removed from train), "train_subset" (the same images
        kept in train too) or "test".
      val_per_class: CUB only: images per class in val.
      val_fraction, test_fraction: folder only: the share of each class's
        images carved out (fixed seed) as val / test when the root has no
        val/ or test/ folder (0: no such split).
      localization_file: folder only: boxes or masks of the images
        (wsolevaluation's localization.txt format; "" = <root>/localization.txt
        when it exists).
      allow_outside_root: accept metadata paths that are absolute or leave the
        root with "..".
      allow_data_change: resume a workdir although the data set's fingerprint
        (ids, labels, boxes, masks, splits) differs from the one it was
        trained on (refused by default).
      strict_boxes: raise on a box outside the decoded image or of zero area
        instead of clipping / dropping it with a counted warning.
      train_resize_antialias: file sources' training resize of the original
        image (to S * train.crop_scale) is bilinear with antialiasing, as PIL's
        resize in wsolevaluation's and the papers' loaders (default True);
        False uses plain bilinear, about 3x cheaper on CPU (aliases when the
        original is over ~2x the crop side). Evaluation resizes stay antialiased.
      resize_mode: file sources' resize of the original before the training
        crop and the ten crops: "square" (big x big, wsolevaluation's
        ``Resize((256, 256))``) or "shorter_side" (the shorter side to big,
        the aspect ratio kept: torchvision ``Resize(256)``, ACoL's release).
      train_cache: file sources: decode and resize the training split to
        S * train.crop_scale once, in memory (N * side^2 * 3 bytes: 1.2 GB for
        CUB at 256), before the first batch; every later element is a crop and
        a flip of it, no decoding. Same images as without (within one grey level
        of float rounding), same order. Default False (ILSVRC does not fit).
        An undecodable image stops that pass with TensorFlow's error (nothing is
        dropped silently): keep validate_images on to skip and count them first.
      train_deterministic: file sources: the parallel training map keeps the
        drawn order (default True: reproducible batches, exact resume). False
        lets elements leave as they finish: batches then depend on timing.
      synthetic: the synthetic benchmark's sizes, seed and difficulty knobs.
      pretrain: the pretraining set's sizes, seed and scene knobs.
      tfds_name: tfds only: builder[/config], e.g. "caltech_birds2011",
        "voc/2007", "coco/2017".
      data_dir: tfds only: TFDS data_dir ("" = TFDS's default).
      tfds_download: tfds only: download and prepare a missing data set.
      split_map: tfds and voc: "name=source_split,..." ("" = the source's
        default, e.g. voc: "train=trainval,val=val,test=test").
    """
    c = ml_collections.ConfigDict()
    c.name = "synthetic"
    c.root = ""
    c.metadata = ""
    c.mask_root = ""
    c.image_size = 64
    c.fatal_decode_errors = False
    c.validate_images = True
    c.hierarchy_file = ""
    c.cub_val = "holdout"
    c.val_per_class = 5
    c.val_fraction = 0.1
    c.test_fraction = 0.1
    c.localization_file = ""
    c.allow_outside_root = False
    c.allow_data_change = False
    c.strict_boxes = False
    c.tfds_name = ""
    c.data_dir = ""
    c.tfds_download = False
    c.split_map = ""
    c.train_resize_antialias = True
    c.train_cache = False
    c.resize_mode = "square"
    c.train_deterministic = True

    s = ml_collections.ConfigDict()
    s.num_train = 1600
    s.num_val = 300
    s.num_test = 500
    s.seed = 0
    s.num_groups = 4  # body shapes (level-1 parents), at most 4
    s.classes_per_group = 2  # leaf classes per group (distinct parts), at most 4
    s.object_scale = (0.45, 0.85)  # object length / canvas short side
    # Sampled part size; the realized part / object pixel ratio is kept in [0.05, 0.15].
    s.part_fraction = (0.05, 0.10)
    s.num_distractors = (2, 5)  # clutter shapes per image (inclusive range)
    s.decoy_prob = 0.5  # fraction of distractors that are part-less bodies
    s.nonsquare_prob = 0.5  # render on a non-square canvas, then squash to S x S
    s.canvas_aspect = (0.65, 1.5)  # canvas width / height range when non-square
    s.part_colour_distractor_prob = 0.1  # flat clutter painted in a part colour
    s.min_body_contrast = 40.0  # min mean RGB distance body vs. what it covers
    s.color_jitter = 0.15
    s.noise_std = 6.0
    c.synthetic = s

    # The procedural pretraining set (wsol_keras.data.pretrain_source): 240
    # classes, rendered on the fly; num_train is the images of one epoch.
    p = ml_collections.ConfigDict()
    p.num_train = 20000
    p.num_val = 2000
    p.num_test = 500
    p.seed = 0
    p.object_scale = (0.35, 0.8)  # object extent / image side
    p.num_clutter = (1, 4)  # clutter blobs per image (inclusive range)
    p.occlusion_prob = 0.3  # a blob drawn over the object
    c.pretrain = p
    return c


def get_source(data_config) -> DataSource:
    """Builds the data source named by ``data_config.name``.

    Args:
      data_config: a ConfigDict like :func:`default_data_config` (missing fields
        take those defaults).

    Returns:
      A :class:`DataSource`; metadata is parsed and validated eagerly.
    """
    cfg = default_data_config()
    cfg.update(_as_dict(data_config))
    name = str(cfg.name)
    if name == "synthetic":
        return SyntheticSource(cfg)
    if name == "cub":
        return CUBSource(cfg)
    if name == "wsol_metadata":
        return WSOLMetadataSource(cfg)
    if name == "tfds":
        from wsol_keras.data.tfds_source import TFDSSource

        return TFDSSource(cfg)
    if name == "pretrain":
        from wsol_keras.data.pretrain_source import PretrainSource

        return PretrainSource(cfg)
    if name == "voc":
        from wsol_keras.data.voc import VOCSource

        return VOCSource(cfg)
    if name == "folder":
        from wsol_keras.data.folder import FolderSource

        return FolderSource(cfg)
    raise ValueError(f"data.name must be one of {SOURCES}, got {name!r}")


def _as_dict(cfg):
    if isinstance(cfg, ml_collections.ConfigDict):
        return cfg.to_dict()
    return dict(cfg)


__all__ = [
    "MAX_BOXES",
    "DataSource",
    "SOURCES",
    "default_data_config",
    "get_source",
    "train_augment",
    "eval_preprocess",
    "augment_dataset",
    "cluster_hierarchy",
    "read_hierarchy_file",
]
