"""wsol_keras.localization.boxes reference + component_tree engines: worked examples,
wsolevaluation edge cases and a brute-force per-threshold cv2 loop written here."""

import cv2
import numpy as np
import pytest
import tensorflow as tf

from wsol_keras.localization import boxes
from wsol_keras.localization.boxes import component_tree


def brute_force_boxes(scoremap, thresholds, multi_contour):
    """wsolevaluation's compute_bboxes_from_scoremaps, re-written plainly."""
    scoremap = scoremap.astype(np.float64)  # wsolevaluation's t2n: maps are np.float
    h, w = scoremap.shape
    img = (scoremap * 255).astype(np.uint8)
    out = []
    for t in thresholds:
        _, thr = cv2.threshold(img, int(t * np.max(img)), 255, cv2.THRESH_BINARY)
        contours = cv2.findContours(thr, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[0]
        if not contours:
            out.append(np.array([[0, 0, 0, 0]]))
            continue
        if not multi_contour:
            contours = [max(contours, key=cv2.contourArea)]
        bx = []
        for c in contours:
            x, y, bw, bh = cv2.boundingRect(c)
            bx.append([x, y, min(x + bw, w - 1), min(y + bh, h - 1)])
        out.append(np.array(bx))
    return out


def smooth_maps(n, size, seed, noise=0.0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    maps = []
    for _ in range(n):
        m = np.zeros((size, size))
        for _ in range(rng.integers(1, 6)):
            cx, cy = rng.uniform(-0.1 * size, 1.1 * size, 2)
            sx, sy = rng.uniform(0.03 * size, 0.25 * size, 2)
            m += rng.uniform(0.3, 1) * np.exp(
                -((xx - cx) ** 2 / (2 * sx**2) + (yy - cy) ** 2 / (2 * sy**2))
            )
        m += rng.normal(0, noise, m.shape)
        maps.append(boxes.normalize_scoremap(m))
    return maps


def as_set(b):
    return sorted(map(tuple, np.asarray(b).tolist()))


@pytest.fixture(params=["fast", "per_level"])
def path(request, monkeypatch):
    """Runs a test through the component-tree fast path and the per-level cv2 path
    (the fast path is skipped for fewer than _MIN_FAST_LEVELS distinct levels)."""
    monkeypatch.setattr(
        component_tree, "_MIN_FAST_LEVELS", 0 if request.param == "fast" else 10**9
    )
    return request.param


# --- normalize_scoremap -------------------------------------------------------------


def test_normalize_scoremap_minmax_flat_and_nan():
    cam = np.array([[2.0, 4.0], [6.0, 10.0]])
    np.testing.assert_allclose(boxes.normalize_scoremap(cam), [[0, 0.25], [0.5, 1.0]])
    np.testing.assert_array_equal(
        boxes.normalize_scoremap(np.full((3, 3), 7.0)), np.zeros((3, 3))
    )
    nan = np.ones((3, 3))
    nan[1, 1] = np.nan
    np.testing.assert_array_equal(boxes.normalize_scoremap(nan), np.zeros((3, 3)))
    assert cam[0, 0] == 2.0  # input untouched


# --- worked examples ----------------------------------------------------------------


def test_single_rectangle_worked_example(path):
    m = np.zeros((10, 10))
    m[2:6, 3:8] = 1.0  # rows 2..5, cols 3..7
    # box = (x, y, x + w, y + h) = (3, 2, 3 + 5, 2 + 4)
    for fn in (boxes.boxes_from_scoremap, boxes.reference_boxes_from_scoremap):
        for mc in (False, True):
            out, n = fn(m, [0.0, 0.5, 0.99], mc)
            assert n == [1, 1, 1]
            for b in out:
                np.testing.assert_array_equal(b, [[3, 2, 8, 6]])


def test_rectangle_touching_the_border_is_clipped(path):
    m = np.zeros((10, 10))
    m[0:10, 6:10] = 1.0
    out, _ = boxes.boxes_from_scoremap(m, [0.5], False)
    # x + w = 6 + 4 = 10 -> clipped to width - 1 = 9; y + h = 10 -> 9
    np.testing.assert_array_equal(out[0], [[6, 0, 9, 9]])


def test_flat_map_gives_the_zero_box(path):
    out, n = boxes.boxes_from_scoremap(np.zeros((8, 8)), np.arange(0, 1, 0.1), True)
    assert n == [1] * 10
    for b in out:
        np.testing.assert_array_equal(b, [[0, 0, 0, 0]])


def test_nan_map_normalized_then_zero_box_and_raw_nan_rejected(path):
    m = np.full((8, 8), np.nan)
    out, _ = boxes.boxes_from_scoremap(boxes.normalize_scoremap(m), [0.2], False)
    np.testing.assert_array_equal(out[0], [[0, 0, 0, 0]])
    with pytest.raises(ValueError, match="NaN"):
        boxes.boxes_from_scoremap(m, [0.2], False)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        boxes.boxes_from_scoremap(np.full((4, 4), 1.5), [0.2], False)


def test_several_peaks_largest_vs_all_contours(path):
    m = np.zeros((12, 12))
    m[1:3, 1:3] = 1.0  # small, high peak: 2x2, contour area 1
    m[5:9, 4:9] = 0.6  # large, lower: rows 5..8, cols 4..8, contour area 3 * 4 = 12
    small, large = [1, 1, 3, 3], [4, 5, 9, 9]
    out, n = boxes.boxes_from_scoremap(m, [0.3, 0.7], multi_contour=False)
    np.testing.assert_array_equal(
        out[0], [large]
    )  # both above the cut: larger area wins
    np.testing.assert_array_equal(
        out[1], [small]
    )  # 0.7 * 255 > 0.6 * 255: only the peak
    out, n = boxes.boxes_from_scoremap(m, [0.3, 0.7], multi_contour=True)
    assert n == [2, 1]
    assert as_set(out[0]) == as_set([small, large])


def test_hole_border_is_a_contour_too(path):
    m = np.zeros((10, 10))
    m[2:8, 2:8] = 1.0
    m[4:6, 4:6] = 0.0  # 2x2 hole at rows/cols 4..5
    out, n = boxes.boxes_from_scoremap(m, [0.5], multi_contour=True)
    # outer: pixels 2..7 -> (2, 2, 8, 8); hole border runs through the ring pixels
    # around the hole (3..6) -> (3, 3, 3 + 4, 3 + 4)
    assert n == [2]
    assert as_set(out[0]) == as_set([[2, 2, 8, 8], [3, 3, 7, 7]])
    out, _ = boxes.boxes_from_scoremap(m, [0.5], multi_contour=False)
    np.testing.assert_array_equal(out[0], [[2, 2, 8, 8]])


def test_threshold_levels_truncate_like_python_int():
    ts = np.arange(0, 1, 0.001)
    expected = [int(t * np.uint8(201)) for t in ts]
    np.testing.assert_array_equal(boxes.threshold_levels(np.uint8(201), ts), expected)


# --- brute force comparison ---------------------------------------------------------


@pytest.mark.parametrize("noise", [0.0, 0.004])
@pytest.mark.parametrize("multi_contour", [False, True])
def test_fast_path_equals_brute_force_loop(noise, multi_contour):
    thresholds = np.arange(0, 1, 0.005)
    for m in smooth_maps(4, 80, seed=7 + int(noise * 1000), noise=noise):
        fast, n_fast = boxes.boxes_from_scoremap(m, thresholds, multi_contour)
        ref = brute_force_boxes(m, thresholds, multi_contour)
        assert n_fast == [len(r) for r in ref]
        for f, r in zip(fast, ref):
            if multi_contour:
                assert as_set(f) == as_set(r)
            else:
                np.testing.assert_array_equal(f, r)


# --- IoU ------------------------------------------------------------------------------


def test_iou_inclusive_convention_worked_example():
    a = [[0, 0, 9, 9]]  # 10 x 10 = 100 pixels
    b = [[5, 5, 14, 14], [20, 20, 30, 30], [0, 0, 9, 9]]
    iou = boxes.iou_xyxy(a, b)
    np.testing.assert_allclose(iou, [[25 / 175, 0.0, 1.0]])
    # a single pixel box has area 1, not 0
    np.testing.assert_allclose(boxes.iou_xyxy([[3, 3, 3, 3]], [[3, 3, 4, 3]]), [[0.5]])


@pytest.mark.parametrize("multi_contour", [False, True])
def test_fast_path_on_plateau_maps_with_holes_and_ties(multi_contour, monkeypatch):
    # piecewise-constant maps: plateaus, holes, equal-area components, border contact
    monkeypatch.setattr(component_tree, "_MIN_FAST_LEVELS", 0)
    rng = np.random.default_rng(5)
    thresholds = np.arange(0, 1, 0.01)
    for i in range(30):
        size = int(rng.integers(5, 24))
        if i % 2:
            m = rng.integers(0, 4, (size, size)).astype(float)
        else:
            m = np.zeros((size, size))
            for _ in range(rng.integers(1, 8)):
                y0, x0 = rng.integers(0, size, 2)
                m[
                    y0 : y0 + rng.integers(1, size // 2 + 2),
                    x0 : x0 + rng.integers(1, size // 2 + 2),
                ] = rng.uniform()
        m = boxes.normalize_scoremap(m)
        fast, _ = boxes.boxes_from_scoremap(m, thresholds, multi_contour)
        ref = brute_force_boxes(m, thresholds, multi_contour)
        for f, r in zip(fast, ref):
            assert as_set(f) == as_set(r)
            assert len(f) == len(r)
