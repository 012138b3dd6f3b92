"""Class hierarchies (leaf -> parent -> grandparent ...) for DANet's HDA loss.

DANet (Xue et al. 2019, Sec. 3.2, Eq. 3) classifies at several hierarchy levels.
A source gets its hierarchy, in this order:

1. ``data.hierarchy_file``, in any of these formats (recognized from the first
   data line, see :mod:`wsol_keras.data.hierarchy_lists`):

   * the package's format: one line per leaf class,
     ``class_id parent_id grandparent_id ...`` (whitespace or commas; ``#``
     starts a comment). ``class_id`` is the data set's own id (CUB: the 1-based
     id of classes.txt; wsolevaluation metadata: the 0-based label of
     class_labels.txt). Ancestor ids are arbitrary integers, renumbered per
     level to 0..n-1 in sorted order. Every class exactly once, same depth on
     every line, and a tree (a node has one parent).
   * DANet's released per-image lists for CUB (``family_label.txt,order_label.txt``
     from xuehaolan/DANet ``data/CUB_200_2011/list/``; 37 families, 11 orders).
   * a ``<child> <parent>`` list (ILSVRC's WordNet synset parents).

   Else ``hierarchy.txt`` in the metadata folder, else in the root.
2. The fallback, :func:`hierarchy_from_names`: level 1 groups classes whose names
   end with the same word (CUB "001.Black_footed_Albatross" -> "Albatross");
   level 2 groups consecutive level-1 groups into about sqrt(n1) chunks. If no
   names share a last word, level 1 is consecutive chunks of about sqrt(C)
   classes. This is a cheap, deterministic stand-in, not a taxonomy: a DANet
   run on it logs a warning (:mod:`wsol_keras.data.method_checks`). For a data-driven
   one, pass class features (e.g. class-mean backbone features) to
   :func:`cluster_hierarchy` and write the result as hierarchy.txt.
"""

from __future__ import annotations

import math
import os
import re
from typing import Dict, List, Optional, Sequence

import numpy as np

from wsol_keras.data import hierarchy_lists as lists
from wsol_keras.data.hierarchy_lists import _check_tree, _renumber


def read_hierarchy_file(path: str, class_ids: Sequence[int]) -> np.ndarray:
    """Reads a hierarchy file.

    Args:
      path: file with lines ``class_id parent_id [grandparent_id ...]``.
      class_ids: the data set's id of each label, in label order (label i has
        id class_ids[i]).

    Returns:
      int32 [C, L] ancestor ids per level, renumbered to 0..n-1.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"hierarchy file {path} does not exist")
    index = {int(c): i for i, c in enumerate(class_ids)}
    rows: Dict[int, List[int]] = {}
    depth: Optional[int] = None
    with open(path) as f:
        for ln, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = [p for p in re.split(r"[,\s]+", line) if p]
            try:
                vals = [int(p) for p in parts]
            except ValueError:
                raise ValueError(
                    f"{path}:{ln}: expected integers "
                    f"'class_id parent_id ...', got {line!r}"
                ) from None
            if len(vals) < 2:
                raise ValueError(
                    f"{path}:{ln}: need a class id and at least one "
                    f"ancestor id, got {line!r}"
                )
            if depth is None:
                depth = len(vals) - 1
            elif len(vals) - 1 != depth:
                raise ValueError(
                    f"{path}:{ln}: {len(vals) - 1} ancestor levels, "
                    f"earlier lines have {depth}"
                )
            if vals[0] not in index:
                raise ValueError(f"{path}:{ln}: unknown class id {vals[0]}")
            if index[vals[0]] in rows:
                raise ValueError(f"{path}:{ln}: class id {vals[0]} listed twice")
            rows[index[vals[0]]] = vals[1:]
    missing = [class_ids[i] for i in range(len(class_ids)) if i not in rows]
    if missing:
        raise ValueError(f"{path}: no line for class id(s) {missing[:10]}")
    h = np.asarray([rows[i] for i in range(len(class_ids))], np.int64)
    h = np.stack([_renumber(h[:, j]) for j in range(h.shape[1])], 1).astype(np.int32)
    _check_tree(h, path)
    return h


def group_word(name: str) -> str:
    """'001.Black_footed_Albatross' -> 'albatross' (last word, lower case)."""
    name = re.sub(r"^\d+[._\s-]*", "", name.strip())
    words = [w for w in re.split(r"[_\s-]+", name) if w]
    return words[-1].lower() if words else name.lower()


def _chunks(n: int, k: int) -> np.ndarray:
    """Assigns n ordered items to k contiguous, nearly equal chunks."""
    k = max(1, min(k, n))
    return (np.arange(n) * k // max(n, 1)).astype(np.int32)


def hierarchy_from_names(class_names: Sequence[str]) -> np.ndarray:
    """Two-level hierarchy from class names (see the module docstring)."""
    c = len(class_names)
    if c == 0:
        return np.zeros((0, 2), np.int32)
    words = [group_word(n) for n in class_names]
    order: Dict[str, int] = {}
    for w in words:
        order.setdefault(w, len(order))
    if len(order) == c:  # no shared words: fall back on consecutive chunks
        level1 = _chunks(c, max(1, round(math.sqrt(c))))
    else:
        level1 = np.asarray([order[w] for w in words], np.int32)
    n1 = int(level1.max()) + 1
    level2 = _chunks(n1, max(1, round(math.sqrt(n1))))[level1]
    return np.stack([level1, level2], 1).astype(np.int32)


def cluster_hierarchy(
    class_features: np.ndarray, sizes: Sequence[int], seed: int = 0, iters: int = 50
) -> np.ndarray:
    """Hierarchy by repeated k-means on class features (DANet: "clustering").

    Level 1 clusters the C class feature vectors into sizes[0] groups; level j+1
    clusters the level-j centroids into sizes[j] groups.

    Args:
      class_features: float [C, D], e.g. the mean backbone feature of each class.
      sizes: number of nodes per ancestor level, decreasing.
      seed: k-means++ initialization seed.
      iters: Lloyd iterations per level.

    Returns:
      int32 [C, len(sizes)], ids renumbered to 0..n-1 per level.
    """
    x = np.asarray(class_features, np.float64)
    if x.ndim != 2:
        raise ValueError(f"class_features must be [C, D], got shape {x.shape}")
    rng = np.random.default_rng(seed)
    assign = np.arange(len(x))
    cols = []
    points = x
    for k in sizes:
        k = int(k)
        if not 1 <= k <= len(points):
            raise ValueError(f"cluster size {k} must be in [1, {len(points)}]")
        lab = _kmeans(points, k, rng, iters)
        assign = lab[assign]
        cols.append(assign.copy())
        points = np.stack([points[lab == j].mean(0) for j in range(int(lab.max()) + 1)])
    h = np.stack([_renumber(col) for col in cols], 1) if cols else np.zeros((len(x), 0))
    return h.astype(np.int32)


def _kmeans(x: np.ndarray, k: int, rng: np.random.Generator, iters: int) -> np.ndarray:
    centers = [x[rng.integers(len(x))]]
    for _ in range(1, k):  # k-means++ seeding
        d = np.min(((x[:, None] - np.asarray(centers)[None]) ** 2).sum(-1), 1)
        p = d / d.sum() if d.sum() > 0 else np.full(len(x), 1 / len(x))
        centers.append(x[rng.choice(len(x), p=p)])
    c = np.asarray(centers)
    lab = np.zeros(len(x), np.int64)
    for _ in range(iters):
        lab = ((x[:, None] - c[None]) ** 2).sum(-1).argmin(1)
        new = np.stack(
            [x[lab == j].mean(0) if np.any(lab == j) else c[j] for j in range(k)]
        )
        if np.allclose(new, c):
            break
        c = new
    # Empty clusters cannot survive k-means++ seeding with distinct points; renumber
    # anyway so ids are contiguous.
    return _renumber(lab).astype(np.int64) if len(set(lab)) < k else lab


def resolve_hierarchy(
    class_ids: Sequence[int],
    class_names: Sequence[str],
    explicit: str,
    search_dirs: Sequence[str],
) -> np.ndarray:
    """File hierarchy if one is given or found, else :func:`hierarchy_from_names`.

    ``explicit`` may name the package's hierarchy.txt, a ``<child> <parent>``
    list, or DANet's per-image lists comma-separated (nearest level first); the
    format is recognized from the first data line (see
    :mod:`wsol_keras.data.hierarchy_lists`). Relative paths are tried as given,
    then under each of ``search_dirs`` (e.g. the CUB root).
    """
    if explicit:
        paths = [_locate(p.strip(), search_dirs) for p in explicit.split(",") if p.strip()]
        fmt = lists.sniff_format(paths[0])
        if len(paths) > 1 and fmt != "danet":
            raise ValueError(
                f"data.hierarchy_file={explicit!r}: several files are only accepted "
                f"as DANet per-image lists; {paths[0]} looks like a {fmt!r} file"
            )
        if fmt == "danet":
            return lists.read_danet_lists(paths, class_names)
        if fmt == "parents":
            return lists.read_parent_list(paths[0], class_names)
        return read_hierarchy_file(paths[0], class_ids)
    for d in search_dirs:
        if d and os.path.isfile(os.path.join(d, "hierarchy.txt")):
            return read_hierarchy_file(os.path.join(d, "hierarchy.txt"), class_ids)
    return hierarchy_from_names(class_names)


def _locate(path: str, search_dirs: Sequence[str]) -> str:
    if os.path.isabs(path) or os.path.isfile(path):
        return path
    for d in search_dirs:
        if d and os.path.isfile(os.path.join(d, path)):
            return os.path.join(d, path)
    raise FileNotFoundError(
        f"hierarchy file {path} not found (tried it as given and under "
        f"{[d for d in search_dirs if d]}). DANet's CUB lists: copy "
        "data/CUB_200_2011/list/ of github.com/xuehaolan/DANet into data.root; "
        "data.hierarchy_file='' falls back on the name-based hierarchy"
    )


def is_name_fallback(hierarchy, class_names: Sequence[str]) -> bool:
    """True when ``hierarchy`` is what :func:`hierarchy_from_names` builds."""
    h = np.asarray(hierarchy)
    auto = hierarchy_from_names(class_names)
    return h.shape == auto.shape and bool(np.array_equal(h, auto))
