"""PASCAL VOC as released (a VOCdevkit/VOC2007 folder): multi-label elements.

Layout under ``data.root`` (e.g. ``VOCdevkit/VOC2007``)::

    Annotations/<id>.xml      one per image: <size><width>,<height>; per
                              <object>: <name>, <difficult> (0/1),
                              <bndbox><xmin>,<ymin>,<xmax>,<ymax>
    ImageSets/Main/<set>.txt  one image id per line (train, val, trainval, test)
    JPEGImages/<id>.jpg
    classes.txt               optional: one class name per line (default: the
                              20 VOC classes in the devkit's order)

Boxes keep VOC's pixel numbers (``xmin, ymin, xmax, ymax`` as written, 1-based
inclusive): the same numbers TFDS's ``voc`` builder stores (normalized by the
image size), so both sources give identical elements. Every object counts for
the multi-hot label; ``difficult`` is carried per object for the protocol
(:mod:`wsol_keras.evaluation.multilabel_metrics`).

Splits (``data.split_map``, default ``train=trainval,val=val,test=test``):
contract split name = image set file. SPN (Sec. 4) trains on trainval and tests
on test; CorLoc is measured on trainval.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from typing import Dict, List

import numpy as np
import tensorflow as tf
from absl import logging

from wsol_keras.data import checks
from wsol_keras.data import multilabel as ml
from wsol_keras.data.pipeline import DataSource
from wsol_keras.data.loaders import decode_pass
from wsol_keras.data.textfiles import read_lines
from wsol_keras.data.textfiles import safe_join

DEFAULT_SPLIT_MAP = "train=trainval,val=val,test=test"


def parse_split_map(text: str, what: str) -> Dict[str, str]:
    """'train=trainval,val=val' -> {"train": "trainval", "val": "val"}."""
    out: Dict[str, str] = {}
    for part in [p.strip() for p in str(text).split(",") if p.strip()]:
        if "=" not in part:
            raise ValueError(
                f"{what}={text!r}: expected 'name=source_split,...', got {part!r}"
            )
        k, v = (s.strip() for s in part.split("=", 1))
        if not k or not v or k in out:
            raise ValueError(f"{what}={text!r}: empty or repeated entry {part!r}")
        out[k] = v
    if "train" not in out:
        raise ValueError(f"{what}={text!r} must name a 'train' split")
    return out


def _text(node, tag: str, path: str, where: str) -> str:
    child = node.find(tag)
    if child is None or child.text is None or not child.text.strip():
        raise ValueError(f"{path}: {where} has no <{tag}>")
    return child.text.strip()


def _number(node, tag, path, where) -> float:
    t = _text(node, tag, path, where)
    try:
        v = float(t)
    except ValueError:
        raise ValueError(f"{path}: {where} <{tag}> must be a number, got {t!r}") from None
    if not np.isfinite(v):
        raise ValueError(f"{path}: {where} <{tag}> must be finite, got {t!r}")
    return v


def parse_annotation(path: str, class_index: Dict[str, int]):
    """One VOC XML file -> (labels [K], boxes [K, 4] xyxy, difficult [K])."""
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        raise ValueError(f"{path}: not valid XML ({e})") from None
    labels, boxes, difficult = [], [], []
    for k, obj in enumerate(root.findall("object")):
        where = f"<object> #{k + 1}"
        name = _text(obj, "name", path, where).lower()
        if name not in class_index:
            raise ValueError(
                f"{path}: {where} has class {name!r}, not one of the "
                f"{len(class_index)} classes (add it to classes.txt)"
            )
        d = obj.find("difficult")
        dtext = d.text.strip() if d is not None and d.text else "0"
        if dtext not in ("0", "1"):
            raise ValueError(f"{path}: {where} <difficult> must be 0 or 1, got {dtext!r}")
        bb = obj.find("bndbox")
        if bb is None:
            raise ValueError(f"{path}: {where} has no <bndbox>")
        box = [_number(bb, t, path, f"{where} <bndbox>") for t in ("xmin", "ymin", "xmax", "ymax")]
        if box[2] < box[0] or box[3] < box[1] or min(box) < 0:
            raise ValueError(
                f"{path}: {where} invalid box xmin,ymin,xmax,ymax={box} "
                "(need 0 <= xmin <= xmax and 0 <= ymin <= ymax)"
            )
        labels.append(class_index[name])
        boxes.append(box)
        difficult.append(dtext == "1")
    return (
        np.asarray(labels, np.int32),
        np.asarray(boxes, np.float32).reshape(-1, 4),
        np.asarray(difficult, bool),
    )


class VOCSource(DataSource):
    """A VOC-layout folder (see the module docstring) as multi-label elements."""

    multi_label = True

    def __init__(self, data_config):
        root = str(data_config.root)
        if not root or not os.path.isdir(root):
            raise FileNotFoundError(
                f"data.root={root!r} is not a directory (expected a VOC folder "
                "such as VOCdevkit/VOC2007 holding Annotations/, ImageSets/Main/, "
                "JPEGImages/)"
            )
        names_file = os.path.join(root, "classes.txt")
        if os.path.isfile(names_file):
            names = [line for _, line in read_lines(names_file)]
        else:
            names = list(ml.VOC_CLASSES)
        class_index = {n.lower(): i for i, n in enumerate(names)}
        split_map = parse_split_map(
            str(data_config.split_map or DEFAULT_SPLIT_MAP), "data.split_map"
        )
        self._allow = bool(data_config.get("allow_outside_root", False))
        self._fatal = bool(data_config.fatal_decode_errors)
        self._strict = bool(data_config.get("strict_boxes", False))
        self._raw: Dict[str, dict] = {}
        self._rows: Dict[str, dict] = {}
        self._skipped: Dict[str, int] = {}
        for split, image_set in split_map.items():
            self._raw[split] = self._read_split(root, image_set, class_index, self._allow)
        super().__init__(
            names, np.zeros((len(names), 0), np.int32), tuple(split_map), int(data_config.image_size)
        )
        self.root = root

    @staticmethod
    def _read_split(root: str, image_set: str, class_index, allow_outside=False) -> dict:
        list_file = os.path.join(root, "ImageSets", "Main", image_set + ".txt")
        ids, origin, line_of = [], [], {}
        for ln, line in read_lines(list_file):
            iid = line.split()[0]
            where = f"{list_file}:{ln}"
            if iid in line_of:
                raise ValueError(
                    f"{where}: image id {iid!r} listed twice (first at line {line_of[iid]})"
                )
            safe_join(os.path.join(root, "JPEGImages"), iid, where, allow_outside)
            line_of[iid] = ln
            ids.append(iid)
            origin.append(where)
        paths, xmls, labels, boxes, difficult = [], [], [], [], []
        for iid, o in zip(ids, origin):
            xml = os.path.join(root, "Annotations", iid + ".xml")
            img = os.path.join(root, "JPEGImages", iid + ".jpg")
            for p, what in ((xml, "annotation"),):
                if not os.path.isfile(p):
                    raise FileNotFoundError(f"{what} {p} of image id {iid!r} (listed at {o}) does not exist")
            lab, box, dif = parse_annotation(xml, class_index)
            paths.append(img)
            xmls.append(xml)
            labels.append(lab)
            boxes.append(box)
            difficult.append(dif)
        regular = checks.scan_files(
            paths, origin, "image", os.path.join(root, "JPEGImages"), allow_outside
        )
        if not regular.all():
            bad = np.flatnonzero(~regular)
            logging.warning(
                "%s: skipped %d non-regular file(s) (FIFO, socket, device), e.g. %s",
                list_file, len(bad), paths[bad[0]],
            )
            keep = np.flatnonzero(regular)
            ids, origin, paths, xmls, labels, boxes, difficult = (
                [x[i] for i in keep]
                for x in (ids, origin, paths, xmls, labels, boxes, difficult)
            )
        n_trunc = ml.truncation_note([len(x) for x in labels])
        if n_trunc:
            logging.warning(
                "%s: %d image(s) have more than MAX_OBJECTS=%d objects; the extra "
                "boxes are dropped from object_* (labels keep every class)",
                list_file, n_trunc, ml.MAX_OBJECTS,
            )
        return dict(ids=ids, paths=paths, labels=labels, boxes=boxes,
                    difficult=difficult, origin=origin, xmls=xmls)

    def _validated(self, split: str) -> dict:
        """The split after one decode pass (undecodable images skipped with a
        count and their names, or raised) and boxes fitted to the decoded
        sizes (clipped with a count, or raised), as the CUB / metadata
        sources do (:mod:`wsol_keras.data.checks`)."""
        self._check_split(split)
        if split not in self._rows:
            r = self._raw[split]
            ok, sizes = decode_pass(r["paths"], r["origin"], self._fatal, f"split {split}")
            keep = np.flatnonzero(ok)
            r = {k: [v[i] for i in keep] for k, v in r.items()}
            boxes, kept = checks.clip_box_lists(
                r["boxes"], sizes[keep], r["xmls"], self._strict, f"split {split}"
            )
            r["boxes"] = boxes
            r["difficult"] = [d[k] for d, k in zip(r["difficult"], kept)]
            r["labels"] = [lab[k] for lab, k in zip(r["labels"], kept)]
            self._skipped[split] = int(len(ok) - len(keep))
            self._rows[split] = r
        return self._rows[split]

    def num_skipped(self, split=None) -> int:
        if split is not None:
            self._validated(split)
            return self._skipped[split]
        return sum(self._skipped.values())

    def fingerprint(self) -> str:
        parts = [self.class_names]
        for split, r in self._raw.items():
            parts += [split, r["ids"], r["labels"], r["boxes"], r["difficult"]]
        return checks.fingerprint(parts)

    def num_examples(self, split: str) -> int:
        return len(self._validated(split)["ids"])

    def annotations(self, split: str) -> List[dict]:
        """Per image: {"image_id", "labels", "boxes" (original px), "difficult"}."""
        r = self._validated(split)
        return [
            {"image_id": i, "labels": l, "boxes": b, "difficult": d}
            for i, l, b, d in zip(r["ids"], r["labels"], r["boxes"], r["difficult"])
        ]

    def dataset(self, split: str) -> tf.data.Dataset:
        r = self._validated(split)
        size, c = self.image_size, self.num_classes
        ragged = lambda xs, dt: tf.ragged.constant([x.tolist() for x in xs], dtype=dt)  # noqa: E731
        boxes = tf.RaggedTensor.from_row_lengths(
            tf.constant(np.concatenate(r["boxes"] + [np.zeros((0, 4), np.float32)]), tf.float32),
            [len(b) for b in r["boxes"]],
        )
        ds = tf.data.Dataset.from_tensor_slices(
            (
                tf.constant(r["paths"], tf.string),
                ragged(r["labels"], tf.int32),
                boxes,
                ragged(r["difficult"], tf.bool),
                tf.constant(r["ids"], tf.string),
            )
        )

        def load(path, labels, bxs, dif, iid):
            image = tf.io.decode_image(
                tf.io.read_file(path), channels=3, expand_animations=False, dtype=tf.uint8
            )
            return ml.make_multilabel_element(image, labels, bxs, dif, iid, size, c)

        return ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
