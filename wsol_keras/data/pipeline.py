"""Shared pieces of every data source: the element contract, decoding, resizing.

Decoding policy (why it looks like this): metadata is parsed and every listed file
is checked for existence eagerly when a source is built, so a missing file or a
malformed line fails immediately with ``file:line``. Images are decoded with
``tf.io.decode_image`` (JPEG incl. CMYK, PNG, GIF first frame, BMP, WebP;
``channels=3`` turns grayscale into RGB and drops an alpha channel). Undecodable
images cannot be caught inside a tf.data graph, so by default each split is
decoded once up front (``validate_images=True``, on the first ``dataset()`` or
``num_examples()`` call, in parallel inside tf.data with errors ignored): images
that fail are logged by path with the reason, counted (``num_skipped``), and left
out of the split, so an epoch can never crash half-way; with
``fatal_decode_errors=True`` the first one raises naming the image path and its
metadata line. With ``validate_images=False`` the check is skipped and failing
elements are dropped by ``Dataset.ignore_errors`` (logged by TF, not counted).

Ground-truth boxes are checked against the decoded size in that same pass
(:mod:`wsol_keras.data.checks`): boxes reaching outside the image are clipped and
zero-area boxes dropped, with a counted warning (``data.strict_boxes=True``
raises instead, naming the metadata line). With ``validate_images=False`` boxes
are not checked.

Resizing follows wsolevaluation: a direct (aspect-changing) resize of the whole
image to S x S (bilinear, antialiased), boxes scaled by S/w and S/h, masks resized
with nearest neighbour.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Dict, List, Optional, Sequence

import numpy as np
import tensorflow as tf
from absl import logging

from wsol_keras.data import augment
from wsol_keras.data import checks
from wsol_keras.data import train_loader
from wsol_keras.data.loaders import MAX_BOXES
from wsol_keras.data.loaders import decode_error_text
from wsol_keras.data.loaders import decode_rgb  # noqa: F401  (re-exported)
from wsol_keras.data.loaders import has_any_mask
from wsol_keras.data.loaders import hierarchy_table  # noqa: F401
from wsol_keras.data.loaders import make_loader
from wsol_keras.data.loaders import make_mask_loader  # noqa: F401
from wsol_keras.data.loaders import mask_sizes
from wsol_keras.data.loaders import decode_pass  # noqa: F401  (re-exported)
from wsol_keras.data.loaders import _decode_error
from wsol_keras.data.loaders import records_tensors
from wsol_keras.data.loaders import resize_image  # noqa: F401
from wsol_keras.data.loaders import scale_boxes  # noqa: F401

# Resize of the original before the training crop / the ten crops.
RESIZE_MODES = ("square", "shorter_side")


def element_spec(image_size: int, hierarchy_levels: int) -> Dict[str, tf.TensorSpec]:
    """The element structure every source yields (see the package docstring)."""
    s, l = int(image_size), int(hierarchy_levels)
    return {
        "image": tf.TensorSpec([s, s, 3], tf.uint8),
        "label": tf.TensorSpec([], tf.int32),
        "hierarchy": tf.TensorSpec([l], tf.int32),
        "boxes": tf.TensorSpec([MAX_BOXES, 4], tf.float32),
        "num_boxes": tf.TensorSpec([], tf.int32),
        "mask": tf.TensorSpec([s, s], tf.uint8),
        "has_mask": tf.TensorSpec([], tf.bool),
        "image_id": tf.TensorSpec([], tf.string),
        # (height, width) of the image before the resize to S x S, for metrics
        # measured in original-image pixels (the pointing game's tolerance).
        "original_size": tf.TensorSpec([2], tf.int32),
    }


class DataSource:
    """A data set with classes, a class hierarchy and named splits.

    Attributes:
      num_classes: number of leaf classes C.
      class_names: list of C names.
      hierarchy: int32 [C, L]; column j is the ancestor id at level j+1 (nearest
        parent first). L may be 0.
      hierarchy_sizes: number of nodes at each ancestor level (length L).
      splits: tuple of split names.
      image_size: S.
    """

    def __init__(
        self,
        class_names: Sequence[str],
        hierarchy: np.ndarray,
        splits: Sequence[str],
        image_size: int,
    ):
        self.class_names = [str(c) for c in class_names]
        self.num_classes = len(self.class_names)
        h = np.asarray(hierarchy, np.int32)
        if h.ndim != 2 or h.shape[0] != self.num_classes:
            raise ValueError(
                f"hierarchy must have shape [num_classes={self.num_classes}, L], "
                f"got {h.shape}"
            )
        self.hierarchy = h
        self.hierarchy_sizes = [int(h[:, j].max()) + 1 for j in range(h.shape[1])]
        self.splits = tuple(splits)
        self.image_size = int(image_size)
        if self.image_size < 1:
            raise ValueError(f"data.image_size must be positive, got {image_size}")

    def _check_split(self, split: str) -> None:
        if split not in self.splits:
            raise ValueError(f"unknown split {split!r}; this source has {self.splits}")

    def num_examples(self, split: str) -> int:
        raise NotImplementedError

    def dataset(self, split: str) -> tf.data.Dataset:
        """Unbatched elements of ``split`` in a fixed order."""
        raise NotImplementedError

    def num_skipped(self, split: Optional[str] = None) -> int:
        """Images left out because they could not be decoded (0 for synthetic)."""
        return 0

    def fingerprint(self) -> Optional[str]:
        """A short hash of the data set's listing (ids, labels, boxes, masks,
        splits; :func:`wsol_keras.data.checks.fingerprint`), stored in a
        workdir so that a resume on changed data is refused; None where the
        data is a function of the config alone (synthetic)."""
        return None

    def train_dataset(self, split: str, seed: int, scale: float, flip: bool, skip: int = 0):
        """Endless shuffled, augmented, unbatched training elements of ``split``.

        Default: shuffles the S x S elements of :meth:`dataset` (a new order
        each pass, a function of ``seed``) and applies
        :func:`wsol_keras.data.augment.train_augment`; the first ``skip``
        elements are dropped before augmentation (exact resume). File sources
        override it to resize the original image once (see ``train_loader``).
        """
        n = self.num_examples(split)
        ds = self.dataset(split).shuffle(
            min(n, 20000), seed=seed, reshuffle_each_iteration=True
        )
        return augment.augment_dataset(
            ds.repeat(), seed=seed, skip=skip, scale=scale, flip=flip
        )

    def __repr__(self):
        return (
            f"{type(self).__name__}(num_classes={self.num_classes}, "
            f"splits={self.splits}, image_size={self.image_size}, "
            f"hierarchy_sizes={self.hierarchy_sizes})"
        )


# ----------------------------------------------------------------------- file sources
@dataclasses.dataclass
class Records:
    """Parsed metadata of one split (all arrays have N rows).

    Boxes are in the original image's pixels; ``mask_paths`` is [N, M] padded with
    "" (M >= 1); ``origin`` names the metadata file and line of each image, for
    error messages; ``box_origin`` (optional) the file and line of each box;
    ``mask_origin`` (optional) the line of each mask of the row, then of the
    ignore mask.
    """

    paths: List[str]
    labels: np.ndarray
    boxes: np.ndarray
    num_boxes: np.ndarray
    mask_paths: np.ndarray
    ignore_paths: np.ndarray
    image_ids: List[str]
    origin: List[str]
    box_origin: Optional[List[List[str]]] = None
    mask_origin: Optional[List[List[str]]] = None

    def __len__(self):
        return len(self.paths)

    def take(self, index: np.ndarray) -> "Records":
        index = np.asarray(index, np.int64)
        return Records(
            [self.paths[i] for i in index],
            self.labels[index],
            self.boxes[index],
            self.num_boxes[index],
            self.mask_paths[index],
            self.ignore_paths[index],
            [self.image_ids[i] for i in index],
            [self.origin[i] for i in index],
            None if self.box_origin is None else [self.box_origin[i] for i in index],
            None if self.mask_origin is None else [self.mask_origin[i] for i in index],
        )


def pad_boxes(box_lists: Sequence[Sequence[Sequence[float]]], origin: Sequence[str]):
    """[N] lists of xyxy boxes -> float32 [N, MAX_BOXES, 4] (-1 padded), int32 [N]."""
    n = len(box_lists)
    out = -np.ones((n, MAX_BOXES, 4), np.float32)
    counts = np.zeros((n,), np.int32)
    for i, bl in enumerate(box_lists):
        if len(bl) > MAX_BOXES:
            logging.warning(
                "%s: %d boxes, keeping the first MAX_BOXES=%d",
                origin[i],
                len(bl),
                MAX_BOXES,
            )
            bl = bl[:MAX_BOXES]
        if bl:
            out[i, : len(bl)] = np.asarray(bl, np.float32)
        counts[i] = len(bl)
    return out, counts


def pad_paths(path_lists: Sequence[Sequence[str]]) -> np.ndarray:
    m = max([1] + [len(p) for p in path_lists])
    out = np.full((len(path_lists), m), "", dtype=object)
    for i, p in enumerate(path_lists):
        out[i, : len(p)] = p
    return out


def records_dataset(rec: Records) -> tf.data.Dataset:
    return tf.data.Dataset.from_tensor_slices(records_tensors(rec))


class FileSource(DataSource):
    """A DataSource over image files described by parsed :class:`Records`."""

    mask_threshold = 127

    def __init__(
        self,
        data_config,
        class_names,
        hierarchy,
        records: Dict[str, Records],
        declared_overlap=(),
    ):
        """``declared_overlap``: split pairs that share images by the config's
        choice (logged at info level instead of a warning)."""
        super().__init__(
            class_names, hierarchy, tuple(records), int(data_config.image_size)
        )
        self._records = records
        self._root = str(data_config.root)
        self._fatal = bool(data_config.fatal_decode_errors)
        self._validate = bool(data_config.validate_images) or self._fatal
        self._strict_boxes = bool(data_config.get("strict_boxes", False))
        self.train_resize_antialias = bool(
            data_config.get("train_resize_antialias", True)
        )
        self.train_cache = bool(data_config.get("train_cache", False))
        self.resize_mode = str(data_config.get("resize_mode", "square"))
        if self.resize_mode not in RESIZE_MODES:
            raise ValueError(
                f"config.data.resize_mode={self.resize_mode!r}: expected one of "
                f"{RESIZE_MODES}"
            )
        self.train_deterministic = bool(data_config.get("train_deterministic", True))
        self._valid: Dict[str, Records] = {}
        self._skipped: Dict[str, List[str]] = {}
        self._loader = make_loader(self.image_size, self.hierarchy, self.mask_threshold)
        for split, rec in records.items():
            bad = rec.labels[(rec.labels < 0) | (rec.labels >= self.num_classes)]
            if bad.size:
                raise ValueError(
                    f"split {split}: label {int(bad[0])} outside "
                    f"[0, {self.num_classes})"
                )
            checks.warn_duplicate_files(rec.paths, rec.origin, f"split {split}")
        checks.warn_split_overlap(
            {k: r.paths for k, r in records.items()}, declared_overlap
        )

    def fingerprint(self) -> str:
        rel = lambda p: os.path.relpath(p, self._root) if p else ""  # noqa: E731
        parts = [self.class_names]
        for split, rec in self._records.items():
            parts += [split, rec.image_ids, rec.labels, rec.boxes, rec.num_boxes,
                      [[rel(m) for m in row] for row in rec.mask_paths],
                      [rel(m) for m in rec.ignore_paths]]
        return checks.fingerprint(parts)

    @property
    def validates_images(self) -> bool:
        """Whether splits are decoded once up front (bad images counted)."""
        return self._validate

    def validated_records(self, split: str) -> Records:
        """The split's records after the optional decode check (see module doc)."""
        return self._validated(split)

    def train_dataset(self, split: str, seed: int, scale: float, flip: bool, skip: int = 0):
        """Endless training elements straight from the files (one resize; see
        :mod:`wsol_keras.data.train_loader`)."""
        return train_loader.train_dataset(self, split, seed, scale, flip, skip=skip)

    def _validated(self, split: str) -> Records:
        self._check_split(split)
        if split in self._valid:
            return self._valid[split]
        rec = self._records[split]
        if not self._validate:
            self._valid[split] = rec
            self._skipped[split] = []
            return rec
        n = len(rec)
        ds = tf.data.Dataset.zip((tf.data.Dataset.range(n), records_dataset(rec)))
        # The output must depend on the decoded pixels, or graph pruning drops the
        # decode ops and nothing is checked.
        with_masks = has_any_mask(rec)
        ds = ds.map(
            lambda i, r: (
                i,
                _checksum(self._loader(*r)),
                mask_sizes(r[4], r[5]) if with_masks else tf.zeros([0, 2], tf.int32),
            ),
            num_parallel_calls=tf.data.AUTOTUNE,
        ).ignore_errors()
        ok = np.zeros((n,), bool)
        sizes = np.zeros((n, 2), np.int64)
        for i, (_, hw), msz in ds.as_numpy_iterator():
            ok[i] = True
            sizes[i] = hw
            _check_mask_sizes(rec, i, hw, msz)
        bad = np.flatnonzero(~ok)
        skipped = []
        for i in bad:
            reason = _decode_error(rec.paths[i], rec.mask_paths[i], rec.ignore_paths[i])
            msg = f"cannot decode image {rec.paths[i]} (listed at {rec.origin[i]}): {reason}"
            if self._fatal:
                raise ValueError(msg + " [data.fatal_decode_errors=True]")
            logging.warning("skipping %s", msg)
            skipped.append(rec.paths[i])
        if skipped:
            logging.warning(
                "split %s: skipped %d undecodable image(s) of %d",
                split,
                len(skipped),
                n,
            )
        self._skipped[split] = skipped
        kept = np.flatnonzero(ok)
        rec = rec.take(kept)
        # Boxes can only be checked against the decoded size (metadata sizes
        # may be wrong), so this happens here, with validate_images on.
        rec.boxes, rec.num_boxes = checks.fit_boxes_to_images(
            rec, sizes[kept], self._strict_boxes, split
        )
        self._valid[split] = rec
        return self._valid[split]

    def num_examples(self, split: str) -> int:
        return len(self._validated(split))

    def num_skipped(self, split: Optional[str] = None) -> int:
        """Undecodable images skipped (in ``split``, or in the splits validated so far)."""
        if split is not None:
            self._validated(split)
            return len(self._skipped[split])
        return sum(len(v) for v in self._skipped.values())

    def skipped_paths(self, split: str) -> List[str]:
        self._validated(split)
        return list(self._skipped[split])

    def dataset(self, split: str) -> tf.data.Dataset:
        rec = self._validated(split)
        loader = make_loader(
            self.image_size, self.hierarchy, self.mask_threshold, has_any_mask(rec)
        )
        ds = records_dataset(rec).map(
            loader, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
        )
        if not self._validate:
            ds = ds.ignore_errors(log_warning=True)
        return ds


def _check_mask_sizes(rec: Records, i: int, hw, msz) -> None:
    """A mask must have its image's size: resizing a mismatched one would
    silently misplace the ground truth. Raises naming the mask file."""
    masks = list(rec.mask_paths[i]) + [rec.ignore_paths[i]]
    for k, (m, (mh, mw)) in enumerate(zip(masks, msz)):
        if m and (mh, mw) != tuple(hw):
            listed = rec.mask_origin[i][k] if rec.mask_origin else rec.origin[i]
            raise ValueError(
                f"mask {m} (listed at {listed}) is {mh} x {mw} but its image "
                f"{rec.paths[i]} is {hw[0]} x {hw[1]} (height x width); masks must "
                "have their image's size"
            )


def _checksum(element) -> tf.Tensor:
    """(pixel checksum, decoded (h, w)); the checksum keeps the decode ops alive."""
    total = tf.reduce_sum(tf.cast(element["image"], tf.int64)) + tf.reduce_sum(
        tf.cast(element["mask"], tf.int64)
    )
    return total, element["original_size"]


def relpath_join(root: str, rel: str) -> str:
    return rel if os.path.isabs(rel) else os.path.join(root, rel)
