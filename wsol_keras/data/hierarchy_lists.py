"""Class hierarchies in the formats they are released in.

Two formats besides the package's own ``hierarchy.txt``
(:func:`wsol_keras.data.hierarchy.read_hierarchy_file`):

**DANet's per-image label lists** (DANet, Xue et al., ICCV 2019, Sec. 4.1: CUB's
200 species -> 37 families -> 11 orders; released as
``data/CUB_200_2011/list/family_label.txt`` and ``order_label.txt`` in
xuehaolan/DANet). One file per level, one line per image::

    001.Black_footed_Albatross/Black_Footed_Albatross_0009_34.jpg 0
    004.Groove_billed_Ani/Groove_Billed_Ani_0033_1494.jpg 1

i.e. ``<image path relative to CUB's images/> <0-based node id>``. The class of a
line is its image's folder: matched against the data set's class names
(``001.Black_footed_Albatross`` in CUB's classes.txt), else by the folder's
number (CUB's 1-based class id; label = id - 1, as in the raw CUB, wsolevaluation
and TFDS sources). Every image of a class must carry the same node id (checked,
with the file and both lines on a conflict), every class must appear, and the
levels must nest (a family has one order). Pass the files nearest level first,
comma-separated: ``data.hierarchy_file=family_label.txt,order_label.txt``.

**A parent list** (e.g. ILSVRC's WordNet): one edge per line,
``<child> <parent>`` (whitespace or comma separated, ``#`` comments), e.g.
``n01440764 n01439121`` (tench -> cyprinid). Leaves are the data set's class
names (write ILSVRC's wnids in wsolevaluation's ``class_names.txt``). Ancestor
level j of a leaf is its j-th ancestor following the first parent listed for each
node (WordNet is a DAG; the first listed parent is the one used); a chain that
reaches a root before ``levels`` repeats the root, so the result is still a tree.
``levels`` defaults to 2 (DANet's three levels); a line ``# levels: N`` sets it.
"""

from __future__ import annotations

import os
import re
from typing import Dict, List, Sequence, Tuple

import numpy as np

DEFAULT_PARENT_LEVELS = 2



def _renumber(col: Sequence[int]) -> np.ndarray:
    uniq = sorted(set(int(v) for v in col))
    idx = {v: i for i, v in enumerate(uniq)}
    return np.asarray([idx[int(v)] for v in col], np.int32)


def _check_tree(h: np.ndarray, where: str) -> None:
    # Each node at level j must have a single parent at level j+1.
    for j in range(h.shape[1] - 1):
        parent: Dict[int, int] = {}
        for a, b in zip(h[:, j], h[:, j + 1]):
            if parent.setdefault(int(a), int(b)) != int(b):
                raise ValueError(
                    f"{where}: level-{j + 1} node {int(a)} has two parents "
                    f"({parent[int(a)]} and {int(b)}) at level {j + 2}"
                )


def _data_lines(path: str):
    if not os.path.isfile(path):
        raise FileNotFoundError(f"hierarchy file {path} does not exist")
    with open(path, encoding="utf-8") as f:
        for ln, raw in enumerate(f, 1):
            line = raw.split("#", 1)[0].strip()
            if line:
                yield ln, [p for p in re.split(r"[,\s]+", line) if p], raw


def _is_int(text: str) -> bool:
    return re.fullmatch(r"[+-]?\d+", text) is not None


def sniff_format(path: str) -> str:
    """"package" (all integers), "danet" (path + integer) or "parents" (two names)."""
    for ln, parts, _ in _data_lines(path):
        if all(_is_int(p) for p in parts):
            return "package"
        if len(parts) == 2 and _is_int(parts[1]):
            return "danet"
        if len(parts) == 2:
            return "parents"
        raise ValueError(
            f"{path}:{ln}: not a hierarchy line: expected 'class_id parent_id ...', "
            f"'<image path> <node id>' (DANet) or '<child> <parent>', got {' '.join(parts)!r}"
        )
    raise ValueError(f"hierarchy file {path} has no data lines")


def _class_of_path(rel: str, class_names: Sequence[str], path: str, ln: int) -> int:
    folder = rel.replace("\\", "/").split("/")[0]
    by_name = {n: i for i, n in enumerate(class_names)}
    if folder in by_name:
        return by_name[folder]
    m = re.match(r"^(\d+)", folder)
    if m and 1 <= int(m.group(1)) <= len(class_names):
        return int(m.group(1)) - 1
    raise ValueError(
        f"{path}:{ln}: image folder {folder!r} is neither a class name nor "
        f"'<1-based class id>.<name>' of the {len(class_names)} classes"
    )


def read_danet_level(path: str, class_names: Sequence[str]) -> np.ndarray:
    """One DANet per-image list -> int64 [C] node id per class."""
    node: Dict[int, Tuple[int, int]] = {}
    for ln, parts, _ in _data_lines(path):
        if len(parts) != 2 or not _is_int(parts[1]):
            raise ValueError(
                f"{path}:{ln}: expected '<image path> <node id>', got {' '.join(parts)!r}"
            )
        c = _class_of_path(parts[0], class_names, path, ln)
        v = int(parts[1])
        if c in node and node[c][0] != v:
            raise ValueError(
                f"{path}:{ln}: class {class_names[c]!r} has node {v} here but "
                f"{node[c][0]} at line {node[c][1]}"
            )
        node.setdefault(c, (v, ln))
    missing = [class_names[i] for i in range(len(class_names)) if i not in node]
    if missing:
        raise ValueError(f"{path}: no image of class(es) {missing[:5]} ({len(missing)} missing)")
    return np.asarray([node[i][0] for i in range(len(class_names))], np.int64)


def read_danet_lists(paths: Sequence[str], class_names: Sequence[str]) -> np.ndarray:
    """DANet's per-image lists, nearest level first -> int32 [C, L] (renumbered)."""

    cols = [_renumber(read_danet_level(p, class_names)) for p in paths]
    h = np.stack(cols, 1).astype(np.int32)
    _check_tree(h, " + ".join(paths))
    return h


def read_parent_list(path: str, class_names: Sequence[str], levels: int = 0) -> np.ndarray:
    """A ``<child> <parent>`` edge list -> int32 [C, levels] (see the module docstring)."""
    parent: Dict[str, str] = {}
    for ln, parts, _ in _data_lines(path):
        if len(parts) != 2:
            raise ValueError(f"{path}:{ln}: expected '<child> <parent>', got {' '.join(parts)!r}")
        parent.setdefault(parts[0], parts[1])  # first listed parent wins
    if not levels:
        levels = DEFAULT_PARENT_LEVELS
        with open(path, encoding="utf-8") as f:
            for raw in f:
                m = re.match(r"\s*#\s*levels\s*:\s*(\d+)", raw)
                if m:
                    levels = int(m.group(1))
                    break
    if levels < 1:
        raise ValueError(f"{path}: levels must be >= 1, got {levels}")
    rows: List[List[str]] = []
    for name in class_names:
        if name not in parent:
            raise ValueError(f"{path}: class {name!r} has no '<child> <parent>' line")
        chain, node = [], name
        for _ in range(levels):
            nxt = parent.get(node, node)  # a root repeats itself
            if nxt != node and (nxt == name or nxt in chain):
                raise ValueError(f"{path}: parent cycle through {nxt!r} (from class {name!r})")
            node = nxt
            chain.append(node)
        rows.append(chain)
    # Node ids are per level: the same name at two levels is two nodes.
    h = np.stack([_renumber_names([r[j] for r in rows]) for j in range(levels)], 1)
    return h.astype(np.int32)


def _renumber_names(col: Sequence[str]) -> np.ndarray:
    idx = {v: i for i, v in enumerate(sorted(set(col)))}
    return np.asarray([idx[v] for v in col], np.int32)
