"""CUB-200-2011 as released (Wah et al. 2011).

Layout under ``data.root``::

    images/<class dir>/<file>.jpg
    images.txt              <image_id> <relative path>
    image_class_labels.txt  <image_id> <class_id>        (1-based class ids)
    train_test_split.txt    <image_id> <is_training_image>
    bounding_boxes.txt      <image_id> <x> <y> <width> <height>
    classes.txt             <class_id> <class_name>
    segmentations/          optional: <relative path with .png>, soft 0-255 masks

Boxes become xyxy = (x, y, x + width, y + height), the same numbers as
wsolevaluation's CUB metadata (e.g. 60,27,325,304 -> 60,27,385,331). Mask
foreground is value > 127 (i.e. > 0.5 of 255). An image without a segmentation
file gets ``has_mask=False``.

Splits: ``train`` (is_training_image = 1) and ``test`` (= 0), as in every paper.
``val`` is needed to pick the CAM threshold with box supervision (wsolevaluation,
Choe et al. 2020, Sec. 4, uses separately collected full-supervision images,
which are not part of the release). Choice (``data.cub_val``):

* ``"holdout"`` (default): ``data.val_per_class`` training images per class
  (chosen with a fixed seed, at most all but one of the class's training
  images), removed from ``train``: the CAM threshold is tuned on images the
  classifier never trained on, as wsolevaluation's ``train-fullsup`` images are
  separate from its training images.
* ``"train_subset"``: the same images, left in ``train`` too (the papers'
  training set unchanged, but the threshold is tuned on training images).
* ``"test"``: val is the test set (what the original papers effectively did).

Class hierarchy: see :mod:`wsol_keras.data.hierarchy` (hierarchy.txt in root if
present; else last word of the class name, e.g. "Albatross", then chunks).
"""

from __future__ import annotations

import os
from typing import Dict, List

import numpy as np

from wsol_keras.data import hierarchy as hier_lib
from wsol_keras.data import checks
from wsol_keras.data import pipeline
from wsol_keras.data.textfiles import check_box
from wsol_keras.data.textfiles import expect_fields
from wsol_keras.data.textfiles import parse_number
from wsol_keras.data.textfiles import read_lines
from wsol_keras.data.textfiles import safe_join

CUB_VAL_MODES = ("train_subset", "holdout", "test")
# Where a user gets the data (the error of a missing root says it).
CUB_DOWNLOAD = (
    "download CUB_200_2011.tgz (Caltech-UCSD Birds-200-2011, "
    "https://www.vision.caltech.edu/datasets/cub_200_2011/) and unpack it; "
    "segmentations.tgz (optional) adds the masks of PxAP"
)
_VAL_SEED = 20110611


def _read_table(path: str, ncols: int, fmt: str) -> Dict[int, tuple]:
    """{image or class id: (values..., line number)} with duplicate checks."""
    out: Dict[int, tuple] = {}
    for ln, line in read_lines(path):
        if (
            ncols == 2
        ):  # id + free text (paths and names may not contain spaces, but allow)
            parts = line.split(None, 1)
        else:
            parts = line.split()
        expect_fields(parts, (ncols,), path, ln, fmt)
        key = parse_number(parts[0], path, ln, "id", int)
        if key in out:
            raise ValueError(
                f"{path}:{ln}: id {key} listed twice " f"(first at line {out[key][-1]})"
            )
        out[key] = tuple(parts[1:]) + (ln,)
    return out


class CUBSource(pipeline.FileSource):
    """CUB-200-2011 from its released text files (see the module docstring)."""

    mask_threshold = 127

    def __init__(self, data_config):
        root = str(data_config.root)
        if not root or not os.path.isdir(root) or not os.path.isfile(
            os.path.join(root, "images.txt")
        ):
            raise FileNotFoundError(
                f"data.root={root!r} is not the CUB_200_2011 folder (no "
                f"images.txt there); {CUB_DOWNLOAD}"
            )
        mode = str(data_config.cub_val)
        if mode not in CUB_VAL_MODES:
            raise ValueError(
                f"data.cub_val must be one of {CUB_VAL_MODES}, got {mode!r}"
            )
        j = lambda f: os.path.join(root, f)  # noqa: E731
        classes = _read_table(j("classes.txt"), 2, "'<class_id> <class_name>'")
        images = _read_table(j("images.txt"), 2, "'<image_id> <relative path>'")
        labels = _read_table(j("image_class_labels.txt"), 2, "'<image_id> <class_id>'")
        split = _read_table(
            j("train_test_split.txt"), 2, "'<image_id> <is_training_image>'"
        )
        bbox = _read_table(
            j("bounding_boxes.txt"), 5, "'<image_id> <x> <y> <width> <height>'"
        )

        class_ids = sorted(classes)
        class_index = {c: i for i, c in enumerate(class_ids)}
        names = [classes[c][0].strip() for c in class_ids]

        for name, table in (
            ("image_class_labels.txt", labels),
            ("train_test_split.txt", split),
            ("bounding_boxes.txt", bbox),
        ):
            extra = sorted(set(table) - set(images))
            if extra:
                raise ValueError(
                    f"{j(name)}:{table[extra[0]][-1]}: image id {extra[0]} "
                    "is not in images.txt"
                )
            missing = sorted(set(images) - set(table))
            if missing:
                raise ValueError(
                    f"{j(name)}: no line for image id {missing[0]} "
                    f"(images.txt:{images[missing[0]][-1]})"
                )

        seg_dir = j("segmentations")
        per_split: Dict[str, List[int]] = {"train": [], "test": []}
        info = {}
        for iid in sorted(images):
            rel, ln = images[iid][0].strip(), images[iid][-1]
            cls_txt, lab_ln = labels[iid][0], labels[iid][-1]
            cid = parse_number(
                cls_txt, j("image_class_labels.txt"), lab_ln, "class id", int
            )
            if cid not in class_index:
                raise ValueError(
                    f"{j('image_class_labels.txt')}:{lab_ln}: class id {cid} "
                    "is not in classes.txt"
                )
            tr_txt, tr_ln = split[iid][0], split[iid][-1]
            is_train = parse_number(
                tr_txt, j("train_test_split.txt"), tr_ln, "is_training_image", int
            )
            if is_train not in (0, 1):
                raise ValueError(
                    f"{j('train_test_split.txt')}:{tr_ln}: is_training_image "
                    f"must be 0 or 1, got {tr_txt!r}"
                )
            bln = bbox[iid][-1]
            x, y, w, h = (
                parse_number(v, j("bounding_boxes.txt"), bln, f, float)
                for v, f in zip(bbox[iid][:4], ("x", "y", "width", "height"))
            )
            box = (x, y, x + w, y + h)
            check_box(box, j("bounding_boxes.txt"), bln)
            seg = os.path.join(seg_dir, os.path.splitext(rel)[0] + ".png")
            info[iid] = dict(
                path=safe_join(
                    os.path.join(root, "images"), rel, f"{j('images.txt')}:{ln}",
                    bool(data_config.get("allow_outside_root", False)),
                ),
                label=class_index[cid],
                box=box,
                mask=seg if os.path.isfile(seg) else "",
                image_id=rel,
                origin=f"{j('images.txt')}:{ln}",
            )
            per_split["train" if is_train else "test"].append(iid)

        checks.check_train_classes(
            [info[i]["label"] for i in per_split["train"]],
            names,
            [f"{j('classes.txt')}:{classes[c][-1]}" for c in class_ids],
        )
        checks.warn_duplicate_files(
            [info[i]["path"] for i in sorted(info)],
            [info[i]["origin"] for i in sorted(info)],
            j("images.txt"),
        )
        val_ids = self._val_ids(per_split, info, mode, int(data_config.val_per_class))
        if mode == "holdout":
            held = set(val_ids)
            per_split["train"] = [i for i in per_split["train"] if i not in held]
        order = {"train": per_split["train"], "val": val_ids, "test": per_split["test"]}

        records = {}
        for name, ids in order.items():
            rows = [info[i] for i in ids]
            boxes, nb = pipeline.pad_boxes(
                [[r["box"]] for r in rows], [r["origin"] for r in rows]
            )
            rec = pipeline.Records(
                paths=[r["path"] for r in rows],
                labels=np.asarray([r["label"] for r in rows], np.int32).reshape(-1),
                boxes=boxes,
                num_boxes=nb,
                mask_paths=pipeline.pad_paths(
                    [[r["mask"]] if r["mask"] else [] for r in rows]
                ),
                ignore_paths=np.asarray([""] * len(rows), object),
                image_ids=[r["image_id"] for r in rows],
                origin=[r["origin"] for r in rows],
            )
            regular = checks.scan_files(
                rec.paths, rec.origin, "image", root,
                bool(data_config.get("allow_outside_root", False)),
            )
            records[name] = checks.skip_non_regular(rec, regular, f"split {name}")

        hierarchy = hier_lib.resolve_hierarchy(
            class_ids, names, str(data_config.hierarchy_file), [root]
        )
        declared = {"train_subset": [("train", "val")], "test": [("val", "test")]}
        super().__init__(
            data_config, names, hierarchy, records, declared.get(mode, ())
        )
        self.root = root

    @staticmethod
    def _val_ids(per_split, info, mode, per_class):
        if mode == "test":
            return list(per_split["test"])
        if per_class < 1:
            raise ValueError(f"data.val_per_class must be >= 1, got {per_class}")
        by_class: Dict[int, List[int]] = {}
        for iid in per_split["train"]:
            by_class.setdefault(info[iid]["label"], []).append(iid)
        rng = np.random.default_rng(_VAL_SEED)
        chosen = []
        # holdout keeps at least one training image of every class
        keep = 1 if mode == "holdout" else 0
        for c in sorted(by_class):
            ids = by_class[c]
            pick = rng.permutation(len(ids))[: min(per_class, len(ids) - keep)]
            chosen.extend(ids[k] for k in sorted(pick))
        return sorted(chosen)
