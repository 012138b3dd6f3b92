"""wsolevaluation's metadata layout (Choe et al. 2020; CUB, ILSVRC, OpenImages).

``data.metadata`` points at ``metadata/<DATASET>``; every sub-folder holding an
``image_ids.txt`` is a split (``train``, ``val``, ``test`` first, others sorted)::

    image_ids.txt      path
    class_labels.txt   path,label                (0-based integer label)
    image_sizes.txt    path,width,height         (optional; checked for format)
    localization.txt   optional; either boxes:   path,x0,y0,x1,y1   (one line per box)
                       or masks (OpenImages):    path,mask_path,ignore_path
                                                 (one line per instance mask; the
                                                 ignore path may be empty)

Image paths are relative to ``data.root``; mask paths to ``data.mask_root`` (or
``data.root`` if empty). Absolute paths and paths climbing out with ``..`` are
refused unless ``data.allow_outside_root``. A conflicting second label line for
an image, or labels leaving a class without any image, raise. Masks follow wsolevaluation: each instance mask is
resized (nearest) and binarized (> 0), instances are OR-ed, and ignore-region
pixels that are not foreground become 255. Boxes are scaled with the *decoded*
image's size (image_sizes.txt is only validated; the decoded size is what the
pixels are). Class names come from ``class_names.txt`` (one name per line in label
order) in the metadata folder or the root when present, else ``class_<id>``;
the number of classes is max(label) + 1 over all splits (or the name count).
"""

from __future__ import annotations

import os
from typing import Dict, List, Tuple

import numpy as np
from absl import logging

from wsol_keras.data import hierarchy as hier_lib
from wsol_keras.data import checks
from wsol_keras.data import pipeline
from wsol_keras.data.textfiles import check_box
from wsol_keras.data.textfiles import expect_fields
from wsol_keras.data.textfiles import parse_number
from wsol_keras.data.textfiles import read_lines
from wsol_keras.data.textfiles import safe_join
from wsol_keras.data.textfiles import split_fields

_SPLIT_ORDER = ("train", "val", "test")
# Where a user gets the metadata and the images (errors of missing ones say it).
METADATA_DOWNLOAD = (
    "the metadata/<DATASET> folders (CUB, ILSVRC, OpenImages) come with "
    "https://github.com/clovaai/wsolevaluation (its metadata/ folder)"
)
IMAGES_DOWNLOAD = (
    "images: CUB_200_2011 from https://www.vision.caltech.edu/datasets/cub_200_2011/ "
    "(and wsolevaluation's CUBV2 val images), ILSVRC 2012 from "
    "https://image-net.org, OpenImages30k with wsolevaluation's "
    "dataset/prepare_openimages.sh"
)


def _find_splits(meta: str) -> List[str]:
    if not meta or not os.path.isdir(meta):
        raise FileNotFoundError(
            f"data.metadata={meta!r} is not a directory "
            f"(expected metadata/<DATASET> with one folder per split); {METADATA_DOWNLOAD}"
        )
    found = [
        d
        for d in sorted(os.listdir(meta))
        if os.path.isfile(os.path.join(meta, d, "image_ids.txt"))
    ]
    if not found:
        raise FileNotFoundError(f"no split folder with image_ids.txt under {meta}")
    return [s for s in _SPLIT_ORDER if s in found] + [
        s for s in found if s not in _SPLIT_ORDER
    ]


def _clean_rows(path: str, ncols: int):
    """Rows of a comma-separated file when every line is plainly well formed
    (UTF-8, no spaces, tabs, CR or blank lines, ``ncols`` fields), else None.

    The vectorized start-up path: 1.2M ILSVRC lines are split in a few C-level
    passes. Anything unusual returns None and the line-by-line parser runs,
    which accepts the same files and raises with ``file:line``.
    """
    with open(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    if any(c in text for c in (" ", "\t", "\r", "\x0b", "\x0c")):
        return None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines or "" in lines:
        return None
    rows = [line.split(",") for line in lines]
    if set(map(len, rows)) != {ncols} or any("" in r for r in rows):
        return None
    return rows


MAX_LABEL = 2**31 - 1


def _fast_ids_and_labels(ids_file: str, lab_file: str):
    """(paths, line_of, labels, label_line) of a clean split, else None."""
    if not (os.path.isfile(ids_file) and os.path.isfile(lab_file)):
        return None
    ids = _clean_rows(ids_file, 1)
    labs = _clean_rows(lab_file, 2)
    if ids is None or labs is None or len(ids) != len(labs):
        return None
    paths = [r[0] for r in ids]
    line_of = dict(zip(paths, range(1, len(paths) + 1)))
    lab_paths = [r[0] for r in labs]
    label_line = dict(zip(lab_paths, range(1, len(labs) + 1)))
    if len(line_of) != len(paths) or label_line.keys() != line_of.keys():
        return None  # duplicates, unknown or missing images: the slow path says where
    texts = [r[1] for r in labs]
    if not all(t.isascii() and t.isdigit() and len(t) < 10 for t in texts):
        return None  # not digits, or maybe beyond int32: the slow path says where
    labels = dict(zip(lab_paths, map(int, texts)))
    return paths, line_of, labels, label_line


def _fast_sizes_ok(size_file: str, line_of: Dict[str, int]) -> bool:
    """True when image_sizes.txt is clean: known images, positive integer sizes."""
    rows = _clean_rows(size_file, 3)
    if rows is None:
        return False
    return all(
        r[0] in line_of
        and r[1].isascii() and r[1].isdigit() and int(r[1]) > 0
        and r[2].isascii() and r[2].isdigit() and int(r[2]) > 0
        for r in rows
    )


def read_localization(loc_file, paths, check_known, mask_root, allow_outside):
    """Boxes or masks of ``paths`` from a localization.txt (when it exists).

    Lines: ``path,x0,y0,x1,y1`` (one line per box, original-image pixels) or
    ``path,mask_path,ignore_path`` (one line per instance mask; ignore path may
    be empty; mask paths relative to ``mask_root``); one kind per file.

    Args:
      loc_file: the file (absent: no boxes, no masks).
      paths: the image paths the lines may name.
      check_known: fn(path, file, line) raising for a path not in ``paths``.
      mask_root: folder mask paths are relative to.
      allow_outside: accept mask paths leaving ``mask_root``.

    Returns:
      (boxes, box_where, masks, ignore, mask_where, ignore_where): dicts keyed
      by path; the ``*_where`` values are the ``file:line`` of each entry.
    """
    boxes: Dict[str, List[Tuple[float, ...]]] = {p: [] for p in paths}
    box_where: Dict[str, List[str]] = {p: [] for p in paths}
    masks: Dict[str, List[str]] = {p: [] for p in paths}
    ignore: Dict[str, str] = {p: "" for p in paths}
    mask_where: Dict[str, List[str]] = {p: [] for p in paths}
    ignore_where: Dict[str, str] = {p: "" for p in paths}
    kind = None
    if os.path.isfile(loc_file):
        for ln, line in read_lines(loc_file):
            f = split_fields(line, ",")
            expect_fields(
                f,
                (2, 3, 5),
                loc_file,
                ln,
                "'path,x0,y0,x1,y1' or 'path,mask_path,ignore_path'",
            )
            this = "box" if len(f) == 5 else "mask"
            if kind is None:
                kind = this
            elif kind != this:
                raise ValueError(f"{loc_file}:{ln}: mixes {this} and {kind} lines")
            check_known(f[0], loc_file, ln)
            if this == "box":
                b = tuple(
                    parse_number(v, loc_file, ln, n, float)
                    for v, n in zip(f[1:], ("x0", "y0", "x1", "y1"))
                )
                check_box(b, loc_file, ln)
                boxes[f[0]].append(b)
                box_where[f[0]].append(f"{loc_file}:{ln}")
            else:
                if not f[1]:
                    raise ValueError(f"{loc_file}:{ln}: empty mask path")
                mp = safe_join(mask_root, f[1], f"{loc_file}:{ln}", allow_outside)
                if not os.path.isfile(mp):
                    raise FileNotFoundError(
                        f"mask {mp} listed at {loc_file}:{ln} does not exist"
                    )
                masks[f[0]].append(mp)
                mask_where[f[0]].append(f"{loc_file}:{ln}")
                if len(f) == 3 and f[2]:
                    ip = safe_join(mask_root, f[2], f"{loc_file}:{ln}", allow_outside)
                    if not os.path.isfile(ip):
                        raise FileNotFoundError(
                            f"ignore mask {ip} listed at {loc_file}:{ln} does not exist"
                        )
                    ignore[f[0]] = ip
                    ignore_where[f[0]] = f"{loc_file}:{ln}"

    return boxes, box_where, masks, ignore, mask_where, ignore_where


def _parse_split(d: str, root: str, mask_root: str, allow_outside: bool = False):
    ids_file = os.path.join(d, "image_ids.txt")
    lab_file = os.path.join(d, "class_labels.txt")
    fast = _fast_ids_and_labels(ids_file, lab_file)
    paths: List[str] = []
    line_of: Dict[str, int] = {}
    for ln, line in [] if fast else read_lines(ids_file):
        f = split_fields(line, ",")
        expect_fields(f, (1,), ids_file, ln, "'path'")
        if f[0] in line_of:
            raise ValueError(
                f"{ids_file}:{ln}: image {f[0]} listed twice "
                f"(first at line {line_of[f[0]]})"
            )
        line_of[f[0]] = ln
        paths.append(f[0])

    def check_known(p, fname, ln):
        if p not in line_of:
            raise ValueError(f"{fname}:{ln}: image {p} is not in {ids_file}")

    labels: Dict[str, int] = {}
    label_line: Dict[str, int] = {}
    if fast:
        paths, line_of, labels, label_line = fast
    for ln, line in [] if fast else read_lines(lab_file):
        f = split_fields(line, ",")
        expect_fields(f, (2,), lab_file, ln, "'path,label'")
        check_known(f[0], lab_file, ln)
        lab = parse_number(f[1], lab_file, ln, "label", int)
        if lab < 0:
            raise ValueError(f"{lab_file}:{ln}: label must be >= 0, got {lab}")
        if lab > MAX_LABEL:  # labels are int32 tensors
            raise ValueError(
                f"{lab_file}:{ln}: label {lab} is out of range (0 .. {MAX_LABEL}; "
                "labels are 0-based class indices)"
            )
        if f[0] in labels:  # a second line would silently win
            raise ValueError(
                f"{lab_file}:{ln}: image {f[0]} labelled again: label {lab} here, "
                f"label {labels[f[0]]} at line {label_line[f[0]]}"
            )
        labels[f[0]] = lab
        label_line[f[0]] = ln
    missing = [p for p in paths if p not in labels]
    if missing:
        raise ValueError(
            f"{lab_file}: no label for image {missing[0]} "
            f"({ids_file}:{line_of[missing[0]]})"
        )

    size_file = os.path.join(d, "image_sizes.txt")
    if os.path.isfile(size_file) and not _fast_sizes_ok(size_file, line_of):
        for ln, line in read_lines(size_file):
            f = split_fields(line, ",")
            expect_fields(f, (3,), size_file, ln, "'path,width,height'")
            check_known(f[0], size_file, ln)
            for v, what in zip(f[1:], ("width", "height")):
                if parse_number(v, size_file, ln, what, int) <= 0:
                    raise ValueError(
                        f"{size_file}:{ln}: {what} must be positive, got {v}"
                    )

    boxes, box_where, masks, ignore, mask_where, ignore_where = read_localization(
        os.path.join(d, "localization.txt"), paths, check_known, mask_root, allow_outside
    )

    origin = [f"{ids_file}:{line_of[p]}" for p in paths]
    b, nb = pipeline.pad_boxes([boxes[p] for p in paths], origin)
    mask_paths = pipeline.pad_paths([masks[p] for p in paths])
    rec = pipeline.Records(
        paths=[
            safe_join(root, p, f"{ids_file}:{line_of[p]}", allow_outside) for p in paths
        ],
        labels=np.asarray([labels[p] for p in paths], np.int32).reshape(-1),
        boxes=b,
        num_boxes=nb,
        mask_paths=mask_paths,
        ignore_paths=np.asarray([ignore[p] for p in paths], object).reshape(-1),
        image_ids=list(paths),
        origin=origin,
        box_origin=[box_where[p][: pipeline.MAX_BOXES] for p in paths],
        mask_origin=[
            (mask_where[p] + [""] * mask_paths.shape[1])[: mask_paths.shape[1]]
            + [ignore_where[p]]
            for p in paths
        ],
    )
    regular = checks.scan_files(rec.paths, rec.origin, "image", root, allow_outside)
    rec = checks.skip_non_regular(rec, regular, ids_file)
    return rec, [f"{lab_file}:{label_line[p]}" for p in rec.image_ids]


def _class_names(dirs: List[str], num_labels: int) -> List[str]:
    for d in dirs:
        p = os.path.join(d, "class_names.txt") if d else ""
        if p and os.path.isfile(p):
            names = [line for _, line in read_lines(p)]
            if len(names) < num_labels:
                raise ValueError(
                    f"{p}: {len(names)} names, but labels go up to " f"{num_labels - 1}"
                )
            return names, p
    return [f"class_{i}" for i in range(num_labels)], None


def _check_no_empty_class(parsed, num_classes: int, names_file) -> None:
    """A label typo (17 for 1) silently creates classes without images: refuse,
    unless class_names.txt declares the classes (e.g. metadata of an evaluation
    split only), then warn with the count."""
    empty = checks.empty_classes(
        {s: rec.labels for s, (rec, _) in parsed.items()}, num_classes
    )
    if empty and names_file:
        logging.warning(
            "%d of the %d classes named in %s have no image in any split (e.g. %s)",
            len(empty), num_classes, names_file, empty[:5],
        )
    elif empty:
        top = max(
            ((int(lab), where[i]) for rec, where in parsed.values()
             for i, lab in enumerate(rec.labels)),
        )
        raise ValueError(
            f"{len(empty)} class(es) have no image in any split (labels "
            f"{empty[:5]}{' ...' if len(empty) > 5 else ''}); labels are 0-based "
            f"and dense, and the highest, {top[0]}, is at {top[1]}: a typo? (a "
            "class_names.txt naming every class allows classes without images)"
        )


class WSOLMetadataSource(pipeline.FileSource):
    """A data set in wsolevaluation's metadata layout (see the module docstring)."""

    # wsolevaluation binarizes instance masks with > 0.5 on 0/255 PNGs.
    mask_threshold = 0

    def __init__(self, data_config):
        meta = str(data_config.metadata)
        root = str(data_config.root)
        if not root or not os.path.isdir(root):
            raise FileNotFoundError(
                f"data.root={root!r} is not a directory (the image root); "
                f"{IMAGES_DOWNLOAD}"
            )
        mask_root = str(data_config.mask_root) or root
        allow = bool(data_config.get("allow_outside_root", False))
        parsed = {
            s: _parse_split(os.path.join(meta, s), root, mask_root, allow)
            for s in _find_splits(meta)
        }
        records = {s: rec for s, (rec, _) in parsed.items()}
        num_labels = 1 + max(
            [int(r.labels.max()) for r in records.values() if len(r)] + [-1]
        )
        names, names_file = _class_names([meta, root], num_labels)
        _check_no_empty_class(parsed, len(names), names_file)
        hierarchy = hier_lib.resolve_hierarchy(
            list(range(len(names))),
            names,
            str(data_config.hierarchy_file),
            [meta, root],
        )
        super().__init__(data_config, names, hierarchy, records)
        self.root, self.metadata = root, meta
