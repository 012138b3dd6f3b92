"""Score map -> boxes, exactly as wsolevaluation does it, plus a fast path and an in-graph TF path.

Conventions (the one place they are documented):

* Boxes are absolute pixel ``xyxy``. Boxes *estimated* from a score map follow
  wsolevaluation's ``compute_bboxes_from_scoremaps``: for a contour with
  ``cv2.boundingRect`` ``(x, y, w, h)`` the box is ``(x, y, x + w, y + h)`` with
  ``x + w`` clipped to ``width - 1`` and ``y + h`` to ``height - 1``. For a connected
  set of pixels with inclusive pixel extent ``[cx0, cx1] x [cy0, cy1]`` that is
  ``(cx0, cy0, min(cx1 + 1, W - 1), min(cy1 + 1, H - 1))``.
* IoU uses the inclusive ``+1`` convention of wsolevaluation's
  ``calculate_multiple_iou`` (a box ``(x0, y0, x1, y1)`` covers
  ``(x1 - x0 + 1) * (y1 - y0 + 1)`` pixels).

Reference read for this module (clovaai/wsolevaluation, ``evaluation.py``:
``compute_bboxes_from_scoremaps``, ``calculate_multiple_iou``; ``inference.py``:
``normalize_scoremap``; ``util.py``: ``check_scoremap_validity``). Per threshold
``t`` the reference does::

    scoremap_image = np.expand_dims((scoremap * 255).astype(np.uint8), 2)
    _, thr = cv2.threshold(scoremap_image, int(t * np.max(scoremap_image)), 255,
                           cv2.THRESH_BINARY)          # foreground: pixel > level
    contours = cv2.findContours(thr, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[0]
    no contour            -> box [0, 0, 0, 0] (one box)
    multi_contour False   -> [max(contours, key=cv2.contourArea)]
    multi_contour True    -> every contour (RETR_TREE: outer borders *and* hole borders)

The fast path (:func:`boxes_from_scoremap`, :func:`level_boxes`) gives identical
boxes with far fewer contour computations; see :func:`_fast_level_table`.
"""

import numpy as np
import cv2

__all__ = [
    "normalize_scoremap",
    "quantize_scoremap",
    "reference_boxes_from_scoremap",
    "boxes_from_scoremap",
    "level_boxes",
    "threshold_levels",
    "iou_xyxy",
    "tf_largest_component_box",
]

# Above this many regional maxima the component tree is deep and the cv2
# per-level path is cheaper than the bisection; results are identical either way.
_MAX_FAST_PLATEAUS = 48
# Below this many distinct cut levels, findContours per level is cheaper.
_MIN_FAST_LEVELS = 8
# 3x3 max steps per while-loop iteration of tf_largest_component_box
_TF_POOL_STEPS = 6


def normalize_scoremap(cam):
    """Min-max normalizes one map to [0, 1] (wsolevaluation ``normalize_scoremap``).

    Args:
        cam: array-like [H, W].

    Returns:
        float64 [H, W] in [0, 1]; all zeros when the map contains a NaN or is
        constant (the reference's two edge cases). Infinite values raise.
    """
    cam = np.array(cam, dtype=np.float64, copy=True)
    if cam.ndim != 2:
        raise ValueError(
            f"normalize_scoremap: expected a 2-D map, got shape {cam.shape}"
        )
    if np.isnan(cam).any():
        return np.zeros_like(cam)
    if np.isinf(cam).any():
        raise ValueError("normalize_scoremap: map contains inf values")
    lo, hi = cam.min(), cam.max()
    if lo == hi:
        return np.zeros_like(cam)
    cam -= lo
    cam /= cam.max()
    return cam


def _check_scoremap(scoremap):
    scoremap = np.asarray(scoremap)
    if scoremap.ndim != 2:
        raise ValueError(f"scoremap must be 2-D [H, W], got shape {scoremap.shape}")
    if not np.issubdtype(scoremap.dtype, np.floating):
        raise TypeError(f"scoremap must be a float array, got dtype {scoremap.dtype}")
    if np.isnan(scoremap).any():
        raise ValueError(
            "scoremap contains NaN (normalize it with normalize_scoremap first)"
        )
    if (scoremap > 1).any() or (scoremap < 0).any():
        raise ValueError(
            f"scoremap must lie in [0, 1]; min={scoremap.min()}, max={scoremap.max()}"
        )
    return scoremap


def quantize_scoremap(scoremap):
    """``(scoremap * 255).astype(uint8)`` as the reference (truncation, not rounding).

    The product is taken in float64, as in wsolevaluation where maps reach the
    evaluator as ``np.float`` (``t2n``); float32 maps are widened first, so a value
    like ``np.float32(128 / 255)`` quantizes the same way as there.
    """
    return (_check_scoremap(scoremap).astype(np.float64) * 255).astype(np.uint8)


def threshold_levels(img_max, thresholds):
    """Integer cut level ``int(t * max)`` per CAM threshold (Python ``int`` truncation)."""
    # float64 product then truncation toward zero == Python int(np.float64 * np.uint8)
    t = np.asarray(
        list(thresholds) if not isinstance(thresholds, np.ndarray) else thresholds,
        dtype=np.float64,
    ).reshape(-1)
    return np.trunc(t * float(img_max)).astype(np.int64)


def _box_from_rect(x, y, w, h, width, height):
    return [x, y, min(x + w, width - 1), min(y + h, height - 1)]


def _cv2_level(img, level, multi_contour):
    """Boxes at one integer level, exactly as the reference's ``scoremap2bbox``."""
    height, width = img.shape
    # cv2.threshold on uint8 with a fractional/negative thresh behaves like "> level".
    _, thr = cv2.threshold(img, int(level), 255, cv2.THRESH_BINARY)
    contours = cv2.findContours(thr, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[0]
    if len(contours) == 0:
        return np.asarray([[0, 0, 0, 0]])
    if not multi_contour:
        contours = [max(contours, key=cv2.contourArea)]
    return np.asarray(
        [_box_from_rect(*cv2.boundingRect(c), width, height) for c in contours]
    )


def reference_boxes_from_scoremap(scoremap, thresholds, multi_contour=False):
    """Plain per-threshold loop (one ``findContours`` per threshold), the reference.

    Args:
        scoremap: float [H, W] in [0, 1].
        thresholds: iterable of CAM thresholds.
        multi_contour: every contour (MaxBoxAccV2) instead of the largest one.

    Returns:
        (list of int arrays [n_t, 4] per threshold, list of n_t).
    """
    img = quantize_scoremap(scoremap)
    levels = threshold_levels(img.max(), thresholds)
    boxes = [_cv2_level(img, lv, multi_contour) for lv in levels]
    return boxes, [len(b) for b in boxes]


# ----------------------------------------------------------------------------------
# Fast path
# ----------------------------------------------------------------------------------


def _regional_maxima_values(img):
    """Values of the 8-connected regional-maximum plateaus of ``img`` with value > 0."""
    dil = cv2.dilate(img, np.ones((3, 3), np.uint8))
    lm = (img == dil) & (img > 0)
    n, lab = cv2.connectedComponents(lm.view(np.uint8), connectivity=8)
    if n <= 1:
        return np.zeros(0, np.int64)
    # A local-max component is a regional maximum unless its plateau continues into
    # an equal-valued pixel that has a higher neighbour. Neighbours of a local-max
    # pixel are never higher, so with non-local-max pixels carrying value + 1 (and
    # local-max pixels 0), one dilation finds the equal-valued non-local-max ones.
    marks = np.where(lm, 0, img.astype(np.uint16) + 1).astype(np.uint16)
    bad = lm & (
        cv2.dilate(marks, np.ones((3, 3), np.uint8)) == img.astype(np.uint16) + 1
    )
    vals = np.zeros(n, np.int64)
    vals[lab[lm]] = img[lm]
    good = np.ones(n, bool)
    good[0] = False
    good[lab[bad]] = False
    return vals[good]


def _sort4(a, b, c, d):
    """Element-wise sort of four arrays (sorting network); returns ascending."""
    a, b = np.minimum(a, b), np.maximum(a, b)
    c, d = np.minimum(c, d), np.maximum(c, d)
    a, c = np.minimum(a, c), np.maximum(a, c)
    b, d = np.minimum(b, d), np.maximum(b, d)
    b, c = np.minimum(b, c), np.maximum(b, c)
    return a, b, c, d


def _euler_numbers(img, top):
    """Euler number (8-connected foreground) of ``img > L`` for L in [0, top).

    Gray's quad formula E8 = (n(Q1) - n(Q3) - 2 n(QD)) / 4 over the 2x2 quads of the
    zero-padded image, evaluated for every level at once from sorted quad values.
    """
    p = np.zeros((img.shape[0] + 2, img.shape[1] + 2), np.uint8)
    p[1:-1, 1:-1] = img
    a, b = p[:-1, :-1].ravel(), p[:-1, 1:].ravel()
    c, d = p[1:, :-1].ravel(), p[1:, 1:].ravel()
    s4, s3, s2, s1 = _sort4(a, b, c, d)  # s1 largest
    diag = (np.minimum(a, d) > np.maximum(b, c)) | (np.minimum(b, c) > np.maximum(a, d))
    nb = 257
    # a quad is Q1 for s2 <= L < s1, Q3 for s4 <= L < s3, diagonal Q2 for s3 <= L < s2
    cnt = (
        np.bincount(s2, minlength=nb)
        - np.bincount(s1, minlength=nb)
        - np.bincount(s4, minlength=nb)
        + np.bincount(s3, minlength=nb)
        - 2
        * (np.bincount(s3[diag], minlength=nb) - np.bincount(s2[diag], minlength=nb))
    )
    return (np.cumsum(cnt) // 4)[:top]


def _segment_boxes(img, lab, n, bottom, top, quad_s34=None):
    """Components at every level of a merge-free segment [bottom, top].

    Components at a level L inside are the components at ``bottom`` restricted to
    ``img > L``, so each component's extent at every level follows from its
    column / row maxima, and its contour area from its 2x2 quads.

    Returns:
        alive [levels, ncomp] bool, boxes [levels, ncomp, 4] (reference convention),
        twice the contour area [levels, ncomp] (or None).

    Args:
        quad_s34: for the single-contour rule, (4th, 3rd) largest value of each 2x2
            quad of ``img``, each [H - 1, W - 1]; None skips the areas.
    """
    h, w = img.shape
    levels = np.arange(bottom, top + 1)
    ncomp = n - 1
    img_i = img.astype(np.int16)
    colmax = np.empty((ncomp, w), np.int16)
    rowmax = np.empty((ncomp, h), np.int16)
    for k in range(ncomp):
        masked = np.where(lab == k + 1, img_i, -1)
        colmax[k] = masked.max(axis=0)
        rowmax[k] = masked.max(axis=1)
    # first column whose value exceeds L = searchsorted in the running (prefix) max
    alive = colmax.max(axis=1)[None, :] > levels[:, None]
    x0 = np.empty((len(levels), ncomp), np.int64)
    x1, y0, y1 = x0.copy(), x0.copy(), x0.copy()
    for k in range(ncomp):
        x0[:, k] = np.searchsorted(
            np.maximum.accumulate(colmax[k]), levels, side="right"
        )
        x1[:, k] = (
            w
            - 1
            - np.searchsorted(
                np.maximum.accumulate(colmax[k, ::-1]), levels, side="right"
            )
        )
        y0[:, k] = np.searchsorted(
            np.maximum.accumulate(rowmax[k]), levels, side="right"
        )
        y1[:, k] = (
            h
            - 1
            - np.searchsorted(
                np.maximum.accumulate(rowmax[k, ::-1]), levels, side="right"
            )
        )
    boxes = np.stack([x0, y0, x1 + 1, y1 + 1], axis=2)  # caller clips to the image
    area2 = None
    if quad_s34 is not None and ncomp > 1:
        # contourArea of an outer border through pixel centres = n(Q4) + n(Q3) / 2 for a
        # hole-free component (levels with holes go to cv2). All foreground pixels of a
        # quad share one component, so the quad's label is the max of its four labels.
        qlab = np.maximum(
            np.maximum(lab[:-1, :-1], lab[:-1, 1:]),
            np.maximum(lab[1:, :-1], lab[1:, 1:]),
        ).ravel()
        s4, s3 = quad_s34[0].ravel(), quad_s34[1].ravel()
        sel = s3 > bottom
        ql = qlab[sel].astype(np.int64) - 1
        nb = 257
        h3 = np.bincount(ql * nb + s3[sel], minlength=ncomp * nb).reshape(ncomp, nb)
        h4 = np.bincount(ql * nb + s4[sel], minlength=ncomp * nb).reshape(ncomp, nb)
        c = np.cumsum((h3 + h4)[:, ::-1], axis=1)[
            :, ::-1
        ]  # quads with s > L at index L+1
        area2 = c[:, levels + 1].T
    return alive, boxes, area2


def _fast_level_table(img, levels, multi_contour):
    """Boxes for each distinct integer level, identical (as sets) to :func:`_cv2_level`.

    Why it is exact and cheap: components of ``img > L`` only appear (at regional
    maxima) or merge as L drops. The number of merges above L is
    ``#plateaus born above L - #components(L)``, so a bisection over levels with one
    ``cv2.connectedComponents`` per probe finds every merge level (the bisection is
    seeded where ``born - Euler number`` jumps, which without holes is exactly where
    merges happen, so a merge usually costs two probes; the decision itself uses
    real component counts only). Between merges the components at any level are
    those of the segment's bottom level restricted to ``img > L``, so per-component
    column/row maxima give every level's boxes at once (an outer contour's bounding
    rect is its component's extent). For the single-contour rule, contour areas
    come from 2x2 quad counts: the border polygon through pixel centres of a
    hole-free 8-connected component has area ``n(Q4) + n(Q3) / 2`` (the quads with
    4 resp. 3 foreground corners; checked against ``cv2.contourArea`` on the test
    and benchmark maps, no counter-example). Levels where the shortcut could differ
    from the reference fall back to ``findContours`` at that level: levels with
    holes (Euler number != #components; RETR_TREE also returns hole borders and
    the outer area includes the holes) and exact ties of the largest area (the
    reference breaks ties by contour order). Maps with more than
    ``_MAX_FAST_PLATEAUS`` regional maxima (noise) use ``findContours`` once per
    distinct level (still ~4x fewer calls than once per threshold at 0.001).

    Args:
        img: uint8 [H, W] quantized map.
        levels: sorted distinct integer levels.
        multi_contour: all contours or the largest one.

    Returns:
        (box_level int array [N], boxes int array [N, 4]); every level has >= 1 box,
        boxes of one level are contiguous. With ``multi_contour`` the order of boxes
        within a level may differ from cv2's contour order.
    """
    height, width = img.shape
    m = int(img.max())
    out_lv, out_bx = [], []

    def add_cv2(lv):
        bx = _cv2_level(img, lv, multi_contour)
        out_lv.append(np.full(len(bx), lv, np.int64))
        out_bx.append(bx.astype(np.int64))

    fast = [lv for lv in levels if 0 <= lv < m]
    if len(fast) < _MIN_FAST_LEVELS:  # a few findContours calls are cheaper
        for lv in fast:
            add_cv2(lv)
        fast = []
    for lv in levels:
        if lv >= m:  # empty foreground -> no contour -> [0, 0, 0, 0]
            out_lv.append(np.array([lv], np.int64))
            out_bx.append(np.zeros((1, 4), np.int64))
        elif lv < 0:
            add_cv2(lv)
    plateau_vals = _regional_maxima_values(img) if fast else None
    if fast and len(plateau_vals) > _MAX_FAST_PLATEAUS:
        for lv in fast:
            add_cv2(lv)
        fast = []
    if fast:
        born_above = np.cumsum(np.bincount(plateau_vals, minlength=257)[::-1])[::-1]
        lo_level, top = fast[0], m - 1
        cache = {}

        # foreground bounding box at every level (labelling only that crop is cheaper)
        lv_col = np.arange(m)[:, None]
        rows_fg = img.max(axis=1)[None, :] > lv_col
        cols_fg = img.max(axis=0)[None, :] > lv_col
        ry0, rx0 = rows_fg.argmax(axis=1), cols_fg.argmax(axis=1)
        ry1 = height - rows_fg[:, ::-1].argmax(axis=1)
        rx1 = width - cols_fg[:, ::-1].argmax(axis=1)

        def probe(lv):
            if lv not in cache:
                y0, x0 = int(ry0[lv]), int(rx0[lv])
                crop = img[y0 : int(ry1[lv]), x0 : int(rx1[lv])]
                _, thr = cv2.threshold(crop, lv, 1, cv2.THRESH_BINARY)
                n, lab = cv2.connectedComponents(thr, connectivity=8)
                cache[lv] = (n, lab, (y0, x0), int(born_above[lv + 1]) - (n - 1))
            return cache[lv][3]

        # Seed the bisection where merges are likely: without holes #components equals
        # the Euler number, so born - Euler (free for all levels) jumps at merges. The
        # bisection below still decides from real component counts only.
        euler = _euler_numbers(img, m)
        mhat = born_above[1 : m + 1] - euler
        cand = (
            np.flatnonzero(mhat[lo_level:top] != mhat[lo_level + 1 : top + 1])
            + lo_level
        )
        seeds = {lo_level, top}
        if len(cand) <= 32:
            seeds |= set(cand.tolist()) | set((cand + 1).tolist())
        seeds = sorted(seeds)
        probe(lo_level)  # the lowest segment's labels are needed even without merges
        merge_levels = []
        stack = list(zip(seeds[:-1], seeds[1:]))
        while stack:
            lo, hi = stack.pop()
            if probe(lo) == probe(hi):
                continue
            if hi - lo == 1:
                merge_levels.append(lo)
                continue
            mid = (lo + hi) // 2
            stack.append((lo, mid))
            stack.append((mid, hi))
        bottoms = sorted({lo_level} | {ml + 1 for ml in merge_levels}, reverse=True)
        fast_arr = np.asarray(fast)
        quads = None
        if not multi_contour:  # 4th and 3rd largest value per 2x2 quad, once per map
            s4, s3, _, _ = _sort4(
                img[:-1, :-1], img[:-1, 1:], img[1:, :-1], img[1:, 1:]
            )
            quads = (s4, s3)
        seg_top = top
        for b in bottoms:
            want = fast_arr[(fast_arr >= b) & (fast_arr <= seg_top)]
            if len(want):
                n, lab, (oy, ox), _ = cache[b]
                crop = img[oy : oy + lab.shape[0], ox : ox + lab.shape[1]]
                s34 = None
                if quads is not None:
                    hc, wc = lab.shape
                    s34 = (
                        quads[0][oy : oy + hc - 1, ox : ox + wc - 1],
                        quads[1][oy : oy + hc - 1, ox : ox + wc - 1],
                    )
                alive, boxes, area2 = _segment_boxes(crop, lab, n, b, seg_top, s34)
                boxes = boxes + np.array([ox, oy, ox, oy])
                boxes[..., 2] = np.minimum(boxes[..., 2], width - 1)
                boxes[..., 3] = np.minimum(boxes[..., 3], height - 1)
                idx = want - b
                alive, boxes = alive[idx], boxes[idx]
                ncomp = alive.sum(axis=1)
                # holes present: RETR_TREE also returns hole borders -> cv2
                fallback = ncomp != euler[want]
                if not multi_contour and area2 is not None:
                    a = np.where(alive, area2[idx], -1)
                    amax = a.max(axis=1, keepdims=True)
                    fallback |= (a == amax).sum(axis=1) > 1  # tie -> contour order
                    alive = alive & (a == amax)
                ok = ~fallback
                li, ci = np.nonzero(alive & ok[:, None])
                out_lv.append(want[li])
                out_bx.append(boxes[li, ci])
                for lv in want[fallback]:
                    add_cv2(int(lv))
            seg_top = b - 1
    box_level = np.concatenate(out_lv)
    boxes = np.concatenate(out_bx).astype(np.int64)
    order = np.argsort(box_level, kind="stable")
    return box_level[order], boxes[order]


def level_boxes(scoremap, thresholds, multi_contour=False):
    """Fast path: boxes per distinct cut level plus the threshold -> level map.

    Args:
        scoremap: float [H, W] in [0, 1].
        thresholds: iterable of CAM thresholds.
        multi_contour: all contours (MaxBoxAccV2) or the largest one (MaxBoxAcc).

    Returns:
        (levels int array [T] (cut level of each threshold), box_level int array [N],
        boxes int array [N, 4]) with boxes of a level contiguous, levels ascending.
    """
    img = quantize_scoremap(scoremap)
    levels = threshold_levels(img.max(), thresholds)
    if len(levels) == 0:
        return levels, np.zeros(0, np.int64), np.zeros((0, 4), np.int64)
    lo, hi = int(levels.min()), int(levels.max())
    if hi - lo <= 4096:  # sorted distinct levels, cheaper than np.unique
        distinct = np.flatnonzero(np.bincount(levels - lo)) + lo
    else:
        distinct = np.unique(levels)
    box_level, boxes = _fast_level_table(img, distinct.tolist(), multi_contour)
    return levels, box_level, boxes


def boxes_from_scoremap(scoremap, thresholds, multi_contour=False):
    """Boxes per CAM threshold, identical to wsolevaluation's ``compute_bboxes_from_scoremaps``.

    Contours are computed once per distinct integer cut level ``int(t * max)``
    (at most 256 exist, however many thresholds), and with the component-tree
    fast path of :func:`_fast_level_table`. With ``multi_contour`` the boxes of a
    threshold are the reference's as a set (order may differ; metrics take the max).

    Args:
        scoremap: float [H, W] in [0, 1].
        thresholds: iterable of CAM thresholds.
        multi_contour: every contour (MaxBoxAccV2) or the largest by
            ``cv2.contourArea`` (MaxBoxAcc).

    Returns:
        (list of int arrays [n_t, 4] per threshold, list of n_t).
    """
    levels, box_level, boxes = level_boxes(scoremap, thresholds, multi_contour)
    uniq, start = np.unique(box_level, return_index=True)
    stop = np.append(start[1:], len(box_level))
    by_level = {int(u): boxes[s:e] for u, s, e in zip(uniq, start, stop)}
    out = [by_level[int(lv)] for lv in levels]
    return out, [len(b) for b in out]


def largest_contour_box(scoremap, threshold):
    """The xyxy box of the largest contour of `scoremap` at one CAM threshold.

    The MaxBoxAcc rule (`boxes_from_scoremap` with `multi_contour=False`) for a
    single threshold: the box the evaluator scores for Top-1/GT-known Loc and
    CorLoc, and the one the report draws.
    """
    return boxes_from_scoremap(scoremap, [threshold], multi_contour=False)[0][0][0]


def iou_xyxy(box_a, box_b):
    """Pairwise IoU [num_a, num_b] with the inclusive +1 convention.

    Same arithmetic as wsolevaluation ``calculate_multiple_iou``: degenerate
    pairs (union <= 0) get IoU 0.

    Args:
        box_a: [num_a, 4] xyxy.
        box_b: [num_b, 4] xyxy.
    """
    a = np.asarray(box_a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(box_b, dtype=np.float64).reshape(-1, 4)
    ix0 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy0 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix1 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.maximum(0, ix1 - ix0 + 1) * np.maximum(0, iy1 - iy0 + 1)
    area_a = (a[:, 2] - a[:, 0] + 1) * (a[:, 3] - a[:, 1] + 1)
    area_b = (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)
    den = area_a[:, None] + area_b[None, :] - inter
    degenerate = den <= 0
    iou = inter / np.where(degenerate, 1, den)
    iou[degenerate] = 0
    return iou


# ----------------------------------------------------------------------------------
# In-graph path (pure TensorFlow ops: no cv2, no py_function; SavedModel / TFLite)
# ----------------------------------------------------------------------------------


def _tf_propagate_max(labels0, mask, step, b, h, w):
    """Spreads the maximum label over `mask`'s connected pixels until stable.

    A few `step` (neighbourhood max) rounds, then a pointer jump (a pixel takes the
    label of the pixel its label points to), repeated until nothing changes;
    checking for convergence only every `_TF_POOL_STEPS` rounds keeps the loop
    overhead down. Labels are 1-based pixel indices (values above h*w mark a
    special class, e.g. "outside"); pixels outside `mask` stay 0.
    """
    import tensorflow as tf  # pylint: disable=g-import-not-at-top  (numpy users skip TF)

    hw = h * w
    mask_flat = tf.reshape(mask, [b, hw])

    def body(labels, _):
        new = labels
        for _ in range(_TF_POOL_STEPS):
            new = step(new) * mask
        flat = tf.reshape(new, [b, hw])
        ptr = tf.clip_by_value(flat - 1, 0, hw - 1)
        flat = tf.maximum(flat, tf.gather(flat, ptr, batch_dims=1) * mask_flat)
        new = tf.reshape(flat, [b, h, w])
        return new, tf.reduce_any(tf.not_equal(new, labels))

    out, _ = tf.while_loop(
        lambda labels, changed: changed,
        body,
        (labels0, tf.constant(True)),
        shape_invariants=(tf.TensorShape([None, None, None]), tf.TensorShape([])),
        maximum_iterations=hw,
    )
    return out


def tf_largest_component_box(
    scoremaps, threshold, criterion="area", float64_quantization=True
):
    """Box of the largest 8-connected component of each thresholded map, in-graph.

    Same quantization and cut as the cv2 path: ``img = int(map * 255)``, foreground
    ``img > int(threshold * max(img))``. Components are labelled by iterative label
    propagation in a ``tf.while_loop``: every foreground pixel starts with its own
    index + 1, then repeatedly takes the maximum label of its 3x3 neighbourhood
    (8-connectivity, as the outer borders ``cv2.findContours`` traces; a few steps per
    iteration) followed by a pointer jump (a label is the index of a pixel of the same
    component whose own label can only be larger), until nothing changes.

    Args:
        scoremaps: float [B, H, W] in [0, 1] (or [H, W]).
        threshold: CAM threshold (float or scalar tensor).
        criterion: "area" ranks components by the outer contour area cv2 uses for
            MaxBoxAcc (polygon through the border pixel centres, holes included:
            ``n(Q4) + n(Q3)/2`` over 2x2 quads of the hole-filled component; ties
            broken by pixel count), "pixels" by foreground pixel count.
            "area" is what the cv2 path ranks by (see bench/box_agreement.py).
        float64_quantization: quantize as ``quantize_scoremap`` (exact product in
            float64). False keeps every op in float32 / int32 for converters without
            float64 (TFLite); a float32 value then differs only when ``map * 255``
            lies within half a float32 ulp of an integer.

    Returns:
        float32 [B, 4] xyxy boxes in the reference convention ``(x0, y0,
        min(x1 + 1, W - 1), min(y1 + 1, H - 1))``; ``[0, 0, 0, 0]`` when the
        foreground is empty.
    """
    import tensorflow as tf  # local: the numpy path must not need TensorFlow

    if criterion not in ("area", "pixels"):
        raise ValueError(f"criterion must be 'area' or 'pixels', got {criterion!r}")
    maps = tf.convert_to_tensor(scoremaps)
    if not maps.dtype.is_floating:
        maps = tf.cast(maps, tf.float32)
    if maps.shape.rank == 2:
        maps = maps[None]
    shape = tf.shape(maps)
    b, h, w = shape[0], shape[1], shape[2]
    hw = h * w
    if float64_quantization:  # float64 product and truncation, as quantize_scoremap
        img = tf.cast(tf.cast(maps, tf.float64) * 255.0, tf.int32)
    else:
        img = tf.cast(tf.cast(maps, tf.float32) * 255.0, tf.int32)
    img_max = tf.reduce_max(img, axis=[1, 2], keepdims=True)
    ft = tf.float64 if float64_quantization else tf.float32
    level = tf.cast(tf.floor(tf.cast(threshold, ft) * tf.cast(img_max, ft)), tf.int32)
    fg = img > level
    fgi = tf.cast(fg, tf.int32)
    if criterion == "area":
        # cv2's outer contour area includes the component's holes: label the
        # hole-filled foreground (background not 4-connected to the image border joins
        # its enclosing component). Filling does not move a component's box, and
        # components nested in a hole never win (they lie inside the encloser).
        bg = 1 - fgi
        rr, cc = tf.range(h)[:, None], tf.range(w)[None, :]
        border = (rr == 0) | (rr == h - 1) | (cc == 0) | (cc == w - 1)
        # label background pixels by index, border ones by hw + 1 (outside); max
        # propagation over 4-neighbours plus pointer jumps spreads "outside" quickly
        idx0 = tf.reshape(tf.range(1, hw + 1), [1, h, w])
        out0 = bg * tf.where(border[None], hw + 1, idx0)

        def cross(x):  # 4-neighbourhood max (background is 4-connected)
            p = tf.pad(x, [[0, 0], [1, 1], [1, 1]])
            return tf.maximum(
                tf.maximum(
                    tf.maximum(p[:, 1:-1, :-2], p[:, 1:-1, 2:]),
                    tf.maximum(p[:, :-2, 1:-1], p[:, 2:, 1:-1]),
                ),
                x,
            )

        out_lab = _tf_propagate_max(out0, bg, cross, b, h, w)
        outside = tf.cast(tf.equal(out_lab, hw + 1), tf.int32)
        solid = 1 - outside
    else:
        solid = fgi
    labels0 = solid * tf.reshape(tf.range(1, hw + 1), [1, h, w])

    def dilate3x3(x):
        # separable 3x3 max with zero padding (labels are >= 0); cheaper than
        # max_pool2d on a single channel
        p = tf.pad(x, [[0, 0], [0, 0], [1, 1]])
        x = tf.maximum(tf.maximum(p[:, :, :-2], p[:, :, 1:-1]), p[:, :, 2:])
        p = tf.pad(x, [[0, 0], [1, 1], [0, 0]])
        return tf.maximum(tf.maximum(p[:, :-2], p[:, 1:-1]), p[:, 2:])

    lab = _tf_propagate_max(
        labels0, solid, dilate3x3, b, h, w
    )  # [B, H, W], 0 background
    offsets = tf.reshape(tf.range(b) * (hw + 1), [b, 1])
    nseg = b * (hw + 1)
    pix = tf.math.unsorted_segment_sum(
        tf.ones([b, hw], tf.int64), tf.reshape(lab, [b, hw]) + offsets, nseg
    )
    if criterion == "area":
        q = (
            solid[:, :-1, :-1]
            + solid[:, :-1, 1:]
            + solid[:, 1:, :-1]
            + solid[:, 1:, 1:]
        )
        weight2 = tf.cast(tf.maximum(q - 2, 0), tf.int64)  # 4 -> 2 (=1), 3 -> 1 (=1/2)
        qlab = tf.maximum(
            tf.maximum(lab[:, :-1, :-1], lab[:, :-1, 1:]),
            tf.maximum(lab[:, 1:, :-1], lab[:, 1:, 1:]),
        )
        nq = (h - 1) * (w - 1)
        area2 = tf.math.unsorted_segment_sum(
            tf.reshape(weight2, [b, nq]), tf.reshape(qlab, [b, nq]) + offsets, nseg
        )
        key = area2 * tf.cast(hw + 1, tf.int64) + pix
    else:
        key = pix
    key = tf.reshape(key, [b, hw + 1])
    key = tf.concat([tf.zeros([b, 1], tf.int64), key[:, 1:]], axis=1)  # drop background
    best = tf.cast(tf.argmax(key, axis=1), tf.int32)
    mask = tf.logical_and(tf.equal(lab, best[:, None, None]), fg)
    has = tf.reduce_any(mask, axis=[1, 2])
    cols = tf.reduce_any(mask, axis=1)  # [B, W]
    rows = tf.reduce_any(mask, axis=2)  # [B, H]
    x0 = tf.argmax(tf.cast(cols, tf.int32), axis=1, output_type=tf.int32)
    x1 = (
        w
        - 1
        - tf.argmax(tf.cast(cols[:, ::-1], tf.int32), axis=1, output_type=tf.int32)
    )
    y0 = tf.argmax(tf.cast(rows, tf.int32), axis=1, output_type=tf.int32)
    y1 = (
        h
        - 1
        - tf.argmax(tf.cast(rows[:, ::-1], tf.int32), axis=1, output_type=tf.int32)
    )
    box = tf.stack(
        [x0, y0, tf.minimum(x1 + 1, w - 1), tf.minimum(y1 + 1, h - 1)], axis=1
    )
    box = tf.where(has[:, None], box, tf.zeros_like(box))
    return tf.cast(box, tf.float32)
