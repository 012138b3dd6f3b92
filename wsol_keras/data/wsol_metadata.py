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
``data.root`` if empty). Masks follow wsolevaluation: each instance mask is
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

from wsol_keras.data import hierarchy as hier_lib
from wsol_keras.data import pipeline
from wsol_keras.data.textfiles import check_box
from wsol_keras.data.textfiles import expect_fields
from wsol_keras.data.textfiles import parse_number
from wsol_keras.data.textfiles import read_lines
from wsol_keras.data.textfiles import split_fields

_SPLIT_ORDER = ("train", "val", "test")


def _find_splits(meta: str) -> List[str]:
    if not meta or not os.path.isdir(meta):
        raise FileNotFoundError(
            f"data.metadata={meta!r} is not a directory "
            "(expected metadata/<DATASET> with one folder per split)"
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


def _parse_split(d: str, root: str, mask_root: str):
    ids_file = os.path.join(d, "image_ids.txt")
    paths: List[str] = []
    line_of: Dict[str, int] = {}
    for ln, line in read_lines(ids_file):
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

    lab_file = os.path.join(d, "class_labels.txt")
    labels: Dict[str, int] = {}
    for ln, line in read_lines(lab_file):
        f = split_fields(line, ",")
        expect_fields(f, (2,), lab_file, ln, "'path,label'")
        check_known(f[0], lab_file, ln)
        lab = parse_number(f[1], lab_file, ln, "label", int)
        if lab < 0:
            raise ValueError(f"{lab_file}:{ln}: label must be >= 0, got {lab}")
        labels[f[0]] = lab
    missing = [p for p in paths if p not in labels]
    if missing:
        raise ValueError(
            f"{lab_file}: no label for image {missing[0]} "
            f"({ids_file}:{line_of[missing[0]]})"
        )

    size_file = os.path.join(d, "image_sizes.txt")
    if os.path.isfile(size_file):
        for ln, line in read_lines(size_file):
            f = split_fields(line, ",")
            expect_fields(f, (3,), size_file, ln, "'path,width,height'")
            check_known(f[0], size_file, ln)
            for v, what in zip(f[1:], ("width", "height")):
                if parse_number(v, size_file, ln, what, int) <= 0:
                    raise ValueError(
                        f"{size_file}:{ln}: {what} must be positive, got {v}"
                    )

    boxes: Dict[str, List[Tuple[float, ...]]] = {p: [] for p in paths}
    masks: Dict[str, List[str]] = {p: [] for p in paths}
    ignore: Dict[str, str] = {p: "" for p in paths}
    loc_file = os.path.join(d, "localization.txt")
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
            else:
                if not f[1]:
                    raise ValueError(f"{loc_file}:{ln}: empty mask path")
                mp = pipeline.relpath_join(mask_root, f[1])
                if not os.path.isfile(mp):
                    raise FileNotFoundError(
                        f"mask {mp} listed at {loc_file}:{ln} does not exist"
                    )
                masks[f[0]].append(mp)
                if len(f) == 3 and f[2]:
                    ip = pipeline.relpath_join(mask_root, f[2])
                    if not os.path.isfile(ip):
                        raise FileNotFoundError(
                            f"ignore mask {ip} listed at {loc_file}:{ln} does not exist"
                        )
                    ignore[f[0]] = ip

    origin = [f"{ids_file}:{line_of[p]}" for p in paths]
    b, nb = pipeline.pad_boxes([boxes[p] for p in paths], origin)
    rec = pipeline.Records(
        paths=[pipeline.relpath_join(root, p) for p in paths],
        labels=np.asarray([labels[p] for p in paths], np.int32).reshape(-1),
        boxes=b,
        num_boxes=nb,
        mask_paths=pipeline.pad_paths([masks[p] for p in paths]),
        ignore_paths=np.asarray([ignore[p] for p in paths], object).reshape(-1),
        image_ids=list(paths),
        origin=origin,
    )
    pipeline.check_files_exist(rec.paths, rec.origin, "image")
    return rec


def _class_names(dirs: List[str], num_labels: int) -> List[str]:
    for d in dirs:
        p = os.path.join(d, "class_names.txt") if d else ""
        if p and os.path.isfile(p):
            names = [line for _, line in read_lines(p)]
            if len(names) < num_labels:
                raise ValueError(
                    f"{p}: {len(names)} names, but labels go up to " f"{num_labels - 1}"
                )
            return names
    return [f"class_{i}" for i in range(num_labels)]


class WSOLMetadataSource(pipeline.FileSource):
    """A data set in wsolevaluation's metadata layout (see the module docstring)."""

    # wsolevaluation binarizes instance masks with > 0.5 on 0/255 PNGs.
    mask_threshold = 0

    def __init__(self, data_config):
        meta = str(data_config.metadata)
        root = str(data_config.root)
        if not root or not os.path.isdir(root):
            raise FileNotFoundError(
                f"data.root={root!r} is not a directory (the image root)"
            )
        mask_root = str(data_config.mask_root) or root
        records = {
            s: _parse_split(os.path.join(meta, s), root, mask_root)
            for s in _find_splits(meta)
        }
        num_labels = 1 + max(
            [int(r.labels.max()) for r in records.values() if len(r)] + [-1]
        )
        names = _class_names([meta, root], num_labels)
        hierarchy = hier_lib.resolve_hierarchy(
            list(range(len(names))),
            names,
            str(data_config.hierarchy_file),
            [meta, root],
        )
        super().__init__(data_config, names, hierarchy, records)
        self.root, self.metadata = root, meta
