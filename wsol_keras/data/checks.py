"""Consistency checks of parsed metadata that no single line can show.

Each ends in a counted warning (the data stays usable and the count says how
much is odd) or, where the result would be silently wrong, an error naming the
file and line:

* one file listed under several ids in a split, and images shared between
  splits (e.g. a test split equal to the train split): counted warnings;
* ground-truth boxes reaching outside the decoded image, or with zero area:
  clipped / dropped with a count, or an error with ``data.strict_boxes=True``.
"""

from __future__ import annotations

import collections
import hashlib
import os
from typing import Dict, Iterable, List, Sequence, Tuple

import numpy as np
from absl import logging


def _key(path: str) -> str:
    return os.path.normcase(os.path.normpath(os.path.abspath(path)))


def _keys(paths: Sequence[str]) -> List[str]:
    """``_key`` of every path, normalizing each folder once (1.2M ILSVRC paths
    live in ~1,000 folders): the per-path work is a split and a lookup."""
    folder_key: Dict[str, str] = {}
    out = []
    for p in paths:
        d, base = os.path.split(p)
        if base in ("", ".", ".."):
            out.append(_key(p))
            continue
        k = folder_key.get(d)
        if k is None:
            k = folder_key[d] = os.path.join(_key(d or "."), "")
        out.append(k + os.path.normcase(base))
    return out


def warn_duplicate_files(paths: Sequence[str], origins: Sequence[str], scope: str) -> int:
    """Warns when several entries of ``scope`` name one file; returns the number of files."""
    keys = _keys(paths)
    counts = collections.Counter(keys)
    where = collections.defaultdict(list)
    if len(counts) < len(keys):
        for k, o in zip(keys, origins):
            if counts[k] > 1:
                where[k].append(o)
    dups = dict(where)
    if dups:
        k, v = next(iter(dups.items()))
        logging.warning(
            "%s: %d file(s) listed under 2 ids or more (%d entries in all), "
            "e.g. %s at %s; they count (and train) more than once",
            scope,
            len(dups),
            sum(len(v) for v in dups.values()),
            k,
            ", ".join(v),
        )
    return len(dups)


def warn_split_overlap(
    split_paths: Dict[str, Sequence[str]], declared: Iterable[Tuple[str, str]] = ()
) -> Dict[Tuple[str, str], int]:
    """Counts the images each pair of splits shares; warns unless the pair is
    ``declared`` (an overlap the config asked for, logged at info level)."""
    declared = {tuple(sorted(p)) for p in declared}
    keys = {s: set(_keys(ps)) for s, ps in split_paths.items()}
    names = list(split_paths)
    out = {}
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            shared = keys[a] & keys[b]
            if not shared:
                continue
            out[(a, b)] = len(shared)
            log = logging.info if tuple(sorted((a, b))) in declared else logging.warning
            log(
                "splits %s and %s share %d image(s) (%d and %d in all), e.g. %s",
                a,
                b,
                len(shared),
                len(keys[a]),
                len(keys[b]),
                min(shared),
            )
    return out


def fit_boxes_to_images(rec, sizes_hw: np.ndarray, strict: bool, split: str):
    """Clips ``rec``'s boxes to each decoded image (H, W) and drops zero-area ones.

    Args:
      rec: :class:`~wsol_keras.data.pipeline.Records` (boxes in original pixels).
      sizes_hw: int [N, 2] decoded (height, width) of each row.
      strict: raise instead of clipping / dropping.
      split: split name for the counted warning.

    Returns:
      (boxes [N, MAX, 4], num_boxes [N]) to use instead of ``rec``'s.
    """
    boxes = rec.boxes.copy()
    counts = rec.num_boxes.copy()
    # Vectorized over the real boxes only (ILSVRC has ~1.2 M rows); only bad
    # boxes go through the Python loop.
    rows, cols = np.nonzero(np.arange(boxes.shape[1])[None, :] < counts[:, None])
    b = boxes[rows, cols].astype(np.float64)  # [V, 4]
    hw = np.asarray(sizes_hw, np.float64)[rows]  # [V, 2]
    c = b.copy()
    c[:, 0], c[:, 2] = np.minimum(b[:, 0], hw[:, 1]), np.minimum(b[:, 2], hw[:, 1])
    c[:, 1], c[:, 3] = np.minimum(b[:, 1], hw[:, 0]), np.minimum(b[:, 3], hw[:, 0])
    empty = (c[:, 2] <= c[:, 0]) | (c[:, 3] <= c[:, 1])
    moved = (c != b).any(axis=1) & ~empty
    clipped, dropped = int(moved.sum()), int(empty.sum())
    example = None
    for k in np.flatnonzero(empty | moved):
        i, j = rows[k], cols[k]
        where = rec.box_origin[i][j] if rec.box_origin else rec.origin[i]
        inside = not (c[k] != b[k]).any()
        what = (
            "has zero area" + (" inside the image" if inside else " once clipped to the image")
            if empty[k]
            else "reaches outside the image"
        )
        msg = (
            f"{where}: box x0,y0,x1,y1=({', '.join(f'{v:.1f}' for v in b[k])}) "
            f"{what} ({rec.paths[i]} decodes to {int(hw[k, 1])} x {int(hw[k, 0])}, W x H)"
        )
        if strict:
            raise ValueError(msg + " [data.strict_boxes=True]")
        example = example or msg
    boxes[rows, cols] = c.astype(np.float32)
    for i in np.unique(rows[empty]):  # compact the rows that lost a box
        start = np.searchsorted(rows, i)  # rows is sorted: row i is contiguous
        keep = boxes[i, : counts[i]][~empty[start : start + counts[i]]]
        boxes[i] = -1
        boxes[i, : len(keep)] = keep
        counts[i] = len(keep)
    if clipped or dropped:
        logging.warning(
            "split %s: clipped %d box(es) to the decoded image and dropped %d "
            "box(es) with zero area (e.g. %s); set data.strict_boxes=True to raise",
            split,
            clipped,
            dropped,
            example,
        )
    return boxes, counts


def empty_classes(labels_per_split: Dict[str, np.ndarray], num_classes: int) -> List[int]:
    """Class ids in [0, num_classes) without an image in any split."""
    seen = np.zeros(num_classes, bool)
    for lab in labels_per_split.values():
        seen[np.asarray(lab, np.int64)] = True
    return np.flatnonzero(~seen).tolist()


def check_files_exist(paths: Sequence[str], origin: Sequence[str], what: str) -> None:
    """Raises FileNotFoundError naming the first listed file that does not exist.

    One directory listing per distinct folder instead of one ``stat`` per file:
    1.2M ILSVRC paths in 1,000 folders take 1,000 listings.
    """
    by_dir: Dict[str, set] = {}
    for p in paths:
        if p:
            by_dir.setdefault(os.path.dirname(p), set())
    for d in by_dir:
        try:
            by_dir[d] = set(os.listdir(d or "."))
        except (FileNotFoundError, NotADirectoryError):
            by_dir[d] = set()
    for p, o in zip(paths, origin):
        if p and os.path.basename(p) not in by_dir[os.path.dirname(p)]:
            raise FileNotFoundError(f"{what} {p} listed at {o} does not exist")


def _inside(path: str, root_real: str) -> bool:
    return path == root_real or path.startswith(os.path.join(root_real, ""))


def scan_files(
    paths: Sequence[str], origin: Sequence[str], what: str, root: str, allow_outside: bool
) -> np.ndarray:
    """Existence, confinement and file type of listed files, one directory
    scan per folder (1.2M ILSVRC paths in 1,000 folders take 1,000 scans).

    Raises FileNotFoundError naming the first missing file and its metadata
    line; unless ``allow_outside``, ValueError for a file whose real path
    (symlinks resolved: each folder once, each symlinked file) leaves
    ``root``. Returns a bool mask: True for regular files (a FIFO, socket or
    device would block or fail the decoder; callers skip them with a count).
    """
    root_real = os.path.realpath(root)
    entries: Dict[str, dict] = {}
    real_dir: Dict[str, str] = {}
    for p in paths:
        d = os.path.dirname(p)
        if p and d not in entries:
            try:
                with os.scandir(d or ".") as it:
                    entries[d] = {e.name: e for e in it}
            except (FileNotFoundError, NotADirectoryError):
                entries[d] = {}
            real_dir[d] = os.path.realpath(d or ".")
    regular = np.ones(len(paths), bool)
    for i, (p, o) in enumerate(zip(paths, origin)):
        if not p:
            continue
        d = os.path.dirname(p)
        e = entries[d].get(os.path.basename(p))
        if e is None:
            raise FileNotFoundError(f"{what} {p} listed at {o} does not exist")
        if not allow_outside:
            real = os.path.realpath(p) if e.is_symlink() else os.path.join(
                real_dir[d], e.name)
            if not _inside(real, root_real):
                raise ValueError(
                    f"{o}: {what} {p} resolves to {real}, outside the data root "
                    f"{root} (a symlink); set data.allow_outside_root=True to allow it"
                )
        regular[i] = e.is_file()
    return regular


def skip_non_regular(rec, regular: np.ndarray, scope: str):
    """``rec`` without the rows whose file is not a regular file, with a
    counted warning naming the first."""
    if regular.all():
        return rec
    bad = np.flatnonzero(~regular)
    logging.warning(
        "%s: skipped %d non-regular file(s) (FIFO, socket, device) of %d, e.g. %s "
        "listed at %s",
        scope, len(bad), len(rec), rec.paths[bad[0]], rec.origin[bad[0]],
    )
    return rec.take(np.flatnonzero(regular))


def clip_box_lists(boxes, sizes_hw, origins, strict: bool, scope: str):
    """Per-image [K, 4] xyxy boxes clipped to each (H, W), zero-area ones
    dropped, with one counted warning (or ValueError with ``strict``); the
    ragged-list form of :func:`fit_boxes_to_images`. Returns (boxes, keep)
    with keep the per-image bool mask of the boxes kept."""
    out, keeps, clipped, dropped, example = [], [], 0, 0, None
    for b, (h, w), o in zip(boxes, sizes_hw, origins):
        b = np.asarray(b, np.float32).reshape(-1, 4)
        c = b.copy()
        c[:, [0, 2]] = np.minimum(b[:, [0, 2]], w)
        c[:, [1, 3]] = np.minimum(b[:, [1, 3]], h)
        empty = (c[:, 2] <= c[:, 0]) | (c[:, 3] <= c[:, 1])
        moved = (c != b).any(axis=1) & ~empty
        for k in np.flatnonzero(empty | moved):
            msg = (
                f"{o}: box x0,y0,x1,y1=({', '.join(f'{v:.1f}' for v in b[k])}) "
                f"{'has zero area once clipped to' if empty[k] else 'reaches outside'} "
                f"the image ({int(w)} x {int(h)}, W x H)"
            )
            if strict:
                raise ValueError(msg + " [data.strict_boxes=True]")
            example = example or msg
        clipped += int(moved.sum())
        dropped += int(empty.sum())
        out.append(c[~empty])
        keeps.append(~empty)
    if clipped or dropped:
        logging.warning(
            "%s: clipped %d box(es) to the decoded image and dropped %d box(es) "
            "with zero area (e.g. %s); set data.strict_boxes=True to raise",
            scope, clipped, dropped, example,
        )
    return out, keeps


def check_train_classes(train_labels, names: Sequence[str], where: Sequence[str]) -> None:
    """Refuses classes without a training image (a model cannot learn them and
    its reported accuracy would hide it); ``where[c]`` names the class's line."""
    if len(train_labels) == 0:
        raise ValueError(
            f"no training image at all ({len(names)} classes); check the split file"
        )
    empty = empty_classes({"train": np.asarray(train_labels)}, len(names))
    if empty:
        c = empty[0]
        raise ValueError(
            f"{where[c]}: class {names[c]} has no training image ({len(empty)} "
            f"class(es) without one: {[names[i] for i in empty[:5]]})"
        )


def fingerprint(parts) -> str:
    """A short sha256 of the parsed data set (ids, labels, boxes, masks,
    split membership): equal for the same data wherever it lives, different
    once images are added, removed, relabelled or re-boxed. Pixels edited in
    place keep it (no file is read: building it costs nothing)."""
    h = hashlib.sha256()

    def add(p):
        if isinstance(p, np.ndarray) and p.dtype != object:
            h.update(f"{p.dtype}{p.shape}".encode())
            h.update(np.ascontiguousarray(p).tobytes())
        elif isinstance(p, (list, tuple, np.ndarray)):
            h.update(f"[{len(p)}".encode())
            for q in p:
                add(q)
        else:
            h.update(repr(p).encode("utf-8", "backslashreplace"))
        h.update(b"\0")

    add(list(parts))
    return h.hexdigest()[:16]
