"""Your own images, one folder per class (``data.name="folder"``).

The layout of ``keras.utils.image_dataset_from_directory``: class names are the
sub-folder names of ``data.root`` in sorted order (label 0 = the first);
images are found recursively inside each class folder (``.jpg``, ``.jpeg``,
``.png``, ``.bmp``, ``.gif``, ``.webp``, any case)::

    root/<class>/<image>                    one pool of images, or
    root/train/<class>/<image>              splits of your own
    root/val/<class>/<image>                (optional)
    root/test/<class>/<image>               (optional)

A root whose folders are ``train`` plus any of ``val`` / ``test`` is read as
splits. A split that is absent is carved out of the training images,
deterministically (a fixed seed, the same images on every run and machine),
per class: ``round(n * data.val_fraction)`` images for val and
``round(n * data.test_fraction)`` for test (at least one each when the class
has three or more images, and at least one stays in train). Set a fraction to
0 to have no such split.

Boxes or masks for evaluation are optional: ``data.localization_file`` (default
``<root>/localization.txt`` when it exists) in wsolevaluation's format,
image paths relative to ``data.root`` as above (``cat/001.jpg`` or
``test/cat/001.jpg``)::

    path,x0,y0,x1,y1                one line per box, original-image pixels
    path,mask_path,ignore_path      one line per instance mask (0/255 PNG,
                                    paths relative to data.mask_root or root)

Without it, training and classification metrics work; localization metrics
(MaxBoxAccV2, PxAP) need boxes or masks of the val and test images.
"""

from __future__ import annotations

import os
from typing import Dict, List

import numpy as np
from absl import logging

from wsol_keras.data import hierarchy as hier_lib
from wsol_keras.data import pipeline
from wsol_keras.data.wsol_metadata import read_localization

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
SPLIT_FOLDERS = ("train", "val", "test")
_CARVE_SEED = 20240607


def _class_folders(folder: str) -> List[str]:
    return sorted(
        d for d in os.listdir(folder)
        if not d.startswith(".") and os.path.isdir(os.path.join(folder, d))
    )


def _images_under(folder: str, root: str) -> List[str]:
    """Image paths under ``folder`` (recursive, sorted), relative to ``root``."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith("."):
                rel = os.path.relpath(os.path.join(dirpath, name), root)
                found.append(rel.replace(os.sep, "/"))
    return found


def _read_split(folder: str, root: str, classes: List[str]) -> Dict[int, List[str]]:
    """{label: [image path relative to root]} of one ``<split>/<class>/`` tree."""
    present = _class_folders(folder)
    unknown = sorted(set(present) - set(classes))
    if unknown:
        raise ValueError(
            f"{os.path.join(folder, unknown[0])}: class folder not in the "
            f"training classes ({', '.join(classes[:5])}{' ...' if len(classes) > 5 else ''})"
        )
    return {
        label: _images_under(os.path.join(folder, name), root)
        for label, name in enumerate(classes)
        if name in present
    }


def _carve(per_class: Dict[int, List[str]], fraction: float, seed: int):
    """Takes ``round(n * fraction)`` images of each class out (fixed seed);
    returns (kept, taken), both {label: [paths]}."""
    kept, taken = {}, {}
    for label in sorted(per_class):
        paths = per_class[label]
        n = len(paths)
        k = int(round(n * fraction)) if fraction > 0 else 0
        if fraction > 0 and k == 0 and n >= 3:
            k = 1
        k = min(k, max(0, n - 1))  # train keeps one image of every class
        rng = np.random.default_rng([seed, label])
        pick = set(rng.permutation(n)[:k].tolist())
        kept[label] = [p for i, p in enumerate(paths) if i not in pick]
        taken[label] = [p for i, p in enumerate(paths) if i in pick]
    return kept, taken


def _fraction(data_config, field: str) -> float:
    value = float(data_config.get(field, 0.1))
    if not 0.0 <= value < 1.0:
        raise ValueError(f"data.{field} must be in [0, 1), got {value}")
    return value


class FolderSource(pipeline.FileSource):
    """Images in one folder per class (see the module docstring)."""

    mask_threshold = 0  # 0/255 masks, as wsolevaluation's OpenImages masks

    def __init__(self, data_config):
        root = str(data_config.root)
        if not root or not os.path.isdir(root):
            raise FileNotFoundError(
                f"data.root={root!r} is not a directory (expected a folder with "
                "one sub-folder of images per class: root/<class>/<image>)"
            )
        top = _class_folders(root)
        split_layout = "train" in top and set(top) <= set(SPLIT_FOLDERS)
        base = os.path.join(root, "train") if split_layout else root
        classes = _class_folders(base)
        if not classes:
            raise FileNotFoundError(
                f"{base}: no class folders (expected {base}/<class>/<image>)"
            )
        train = _read_split(base, root, classes)
        empty = [classes[c] for c in range(len(classes)) if not train.get(c)]
        if empty:
            raise ValueError(
                f"{os.path.join(base, empty[0])}: no images ({', '.join(IMAGE_EXTENSIONS)})"
                f"{f'; {len(empty)} such class folders' if len(empty) > 1 else ''}"
            )
        splits = {"train": train}
        for name, field in (("test", "test_fraction"), ("val", "val_fraction")):
            if split_layout and name in top:
                splits[name] = _read_split(os.path.join(root, name), root, classes)
            else:
                fraction = _fraction(data_config, field)
                if fraction > 0:
                    splits["train"], splits[name] = _carve(
                        splits["train"], fraction, _CARVE_SEED + len(name)
                    )
        ordered = {s: splits[s] for s in SPLIT_FOLDERS if s in splits}

        mask_root = str(data_config.mask_root) or root
        allow = bool(data_config.get("allow_outside_root", False))
        loc_file = str(data_config.get("localization_file", "")) or os.path.join(
            root, "localization.txt"
        )
        if data_config.get("localization_file", "") and not os.path.isfile(loc_file):
            raise FileNotFoundError(f"data.localization_file={loc_file!r} does not exist")
        every = [p for per in ordered.values() for ps in per.values() for p in ps]

        def check_known(p, fname, ln):
            if p not in known:
                raise ValueError(
                    f"{fname}:{ln}: image {p} is not under {root} (paths are "
                    "relative to data.root, e.g. <class>/<file>)"
                )

        known = set(every)
        boxes, box_where, masks, ignore, mask_where, ignore_where = read_localization(
            loc_file, every, check_known, mask_root, allow
        )
        records = {}
        for split, per_class in ordered.items():
            rows = [(p, c) for c in sorted(per_class) for p in per_class[c]]
            paths = [p for p, _ in rows]
            origin = [os.path.join(root, p) for p in paths]
            b, nb = pipeline.pad_boxes([boxes[p] for p in paths], origin)
            mask_paths = pipeline.pad_paths([masks[p] for p in paths])
            records[split] = pipeline.Records(
                paths=origin,
                labels=np.asarray([c for _, c in rows], np.int32).reshape(-1),
                boxes=b,
                num_boxes=nb,
                mask_paths=mask_paths,
                ignore_paths=np.asarray([ignore[p] for p in paths], object).reshape(-1),
                image_ids=paths,
                origin=origin,
                box_origin=[box_where[p][: pipeline.MAX_BOXES] for p in paths],
                mask_origin=[
                    (mask_where[p] + [""] * mask_paths.shape[1])[: mask_paths.shape[1]]
                    + [ignore_where[p]]
                    for p in paths
                ],
            )
        if not os.path.isfile(loc_file):
            logging.info(
                "%s: no localization.txt; localization metrics need boxes or "
                "masks (see wsol_keras.data.folder)", root,
            )
        hierarchy = hier_lib.resolve_hierarchy(
            list(range(len(classes))), classes, str(data_config.hierarchy_file), [root]
        )
        super().__init__(data_config, classes, hierarchy, records)
        self.root = root
