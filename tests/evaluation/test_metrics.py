"""Tests for wsol_keras.evaluation.metrics against hand-computed examples and a brute-force
re-implementation of wsolevaluation's BoxEvaluator written here."""

import numpy as np
import pytest

from localization.boxes.test_boxes import brute_force_boxes  # the plain per-threshold cv2 loop
from wsol_keras.localization import boxes
from wsol_keras.evaluation import metrics
def reference_box_evaluator(maps, gt_boxes, cam_thresholds, iou_levels, multi_contour):
    """wsolevaluation BoxEvaluator.accumulate / compute, written plainly (counts)."""
    num_correct = {d: np.zeros(len(cam_thresholds)) for d in iou_levels}
    for scoremap, gt in zip(maps, gt_boxes):
        best = []
        for est in brute_force_boxes(scoremap, cam_thresholds, multi_contour):
            ious = []
            for e in est:
                for g in gt:
                    iw = max(0, min(e[2], g[2]) - max(e[0], g[0]) + 1)
                    ih = max(0, min(e[3], g[3]) - max(e[1], g[1]) + 1)
                    inter = iw * ih
                    union = (
                        (e[2] - e[0] + 1) * (e[3] - e[1] + 1)
                        + (g[2] - g[0] + 1) * (g[3] - g[1] + 1)
                        - inter
                    )
                    ious.append(inter / union if union > 0 else 0.0)
            best.append(max(ious))
        for d in iou_levels:
            num_correct[d] += np.asarray(best) >= d / 100
    return num_correct


def smooth_maps(n, size, seed):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    out = []
    for _ in range(n):
        m = np.zeros((size, size))
        for _ in range(rng.integers(1, 5)):
            cx, cy = rng.uniform(0, size, 2)
            sx, sy = rng.uniform(0.05 * size, 0.3 * size, 2)
            m += rng.uniform(0.3, 1) * np.exp(
                -((xx - cx) ** 2 / (2 * sx**2) + (yy - cy) ** 2 / (2 * sy**2))
            )
        out.append(boxes.normalize_scoremap(m))
    return out


# --- BoxAccuracy ----------------------------------------------------------------------


def nested_map():
    m = np.zeros((20, 20))
    m[2:16, 3:18] = 0.4  # outer object, rows 2..15, cols 3..17
    m[6:9, 8:11] = 1.0  # small peak
    return m


def test_box_accuracy_worked_example_curve():
    ts = np.arange(0, 1, 0.01)
    acc = metrics.BoxAccuracy(
        cam_thresholds=ts, iou_thresholds=(30, 50, 70), multi_contour=False
    )
    gt_outer = [[3, 2, 17, 15]]
    far = [[0, 18, 1, 19]]
    acc.update(np.stack([nested_map(), nested_map()]), [gt_outer, far])
    # outer object is foreground while int(t * 255) < int(0.4 * 255) = 102, then the
    # box is the peak (8, 6, 11, 9). Outer box (3, 2, 18, 16) vs GT (3, 2, 17, 15):
    # IoU = 15 * 14 / (16 * 15) = 0.875; peak box 4 * 4 = 16 px inside GT: 16 / 210.
    outer_fg = np.array([int(t * 255) < int(0.4 * 255) for t in ts])
    curves = acc.curves()
    for d in (30, 50, 70):
        np.testing.assert_allclose(curves[d], np.where(outer_fg, 50.0, 0.0))
    r = acc.result()
    assert r["max_box_acc_iou50"] == 50.0
    assert r["best_threshold_iou70"] == 0.0
    assert r["max_box_acc"] == pytest.approx(50.0)
    assert r["num_images"] == 2


def test_multi_contour_finds_the_small_object():
    m = np.zeros((12, 12))
    m[1:3, 1:3] = 0.6  # small object, lower score
    m[5:9, 4:9] = 1.0  # large distractor
    gt_small = [[1, 1, 2, 2]]
    v1 = metrics.BoxAccuracy([0.3], iou_thresholds=(50,), multi_contour=False)
    v2 = metrics.BoxAccuracy([0.3], iou_thresholds=(50,), multi_contour=True)
    v1.update(m[None], [gt_small])
    v2.update(m[None], [gt_small])
    # small contour box (1, 1, 3, 3) = 9 px vs GT 4 px inside it: IoU 4 / 9 < 0.5
    assert v1.result()["max_box_acc_iou50"] == 0.0
    assert v2.result()["max_box_acc_iou50"] == 0.0
    v2b = metrics.BoxAccuracy([0.3], iou_thresholds=(40,), multi_contour=True)
    v1b = metrics.BoxAccuracy([0.3], iou_thresholds=(40,), multi_contour=False)
    v2b.update(m[None], [gt_small])
    v1b.update(m[None], [gt_small])
    assert v2b.result()["max_box_acc_iou40"] == 100.0
    assert v1b.result()["max_box_acc_iou40"] == 0.0  # largest contour is the distractor


@pytest.mark.parametrize("multi_contour", [False, True])
def test_box_accuracy_equals_brute_force_evaluator(multi_contour):
    ts = np.arange(0, 1, 0.01)
    maps = smooth_maps(6, 64, seed=11)
    rng = np.random.default_rng(0)
    gts = []
    for _ in maps:
        x0, y0 = rng.integers(0, 40, 2)
        gts.append([[x0, y0, x0 + rng.integers(5, 24), y0 + rng.integers(5, 24)]])
    acc = metrics.BoxAccuracy(ts, (30, 50, 70), multi_contour)
    acc.update(np.stack(maps[:3]), gts[:3])  # streaming: two batches
    acc.update(np.stack(maps[3:]), gts[3:])
    ref = reference_box_evaluator(maps, gts, ts, (30, 50, 70), multi_contour)
    for d in (30, 50, 70):
        np.testing.assert_array_equal(acc.num_correct[d], ref[d])
        assert acc.result()[f"max_box_acc_iou{d}"] == pytest.approx(
            ref[d].max() * 100 / 6
        )


def test_box_accuracy_edge_cases_and_errors():
    acc = metrics.BoxAccuracy([0.0, 0.5], iou_thresholds=(50,))
    flat = np.zeros((8, 8))
    nan_map = boxes.normalize_scoremap(np.full((8, 8), np.nan))
    # zero box [0, 0, 0, 0] vs GT (0, 0, 0, 0) -> IoU 1 (one pixel, inclusive)
    padded = np.array([[0, 0, 0, 0], [-1, -1, -1, -1]])
    acc.update(np.stack([flat, nan_map]), [padded, [[4, 4, 7, 7]]])
    np.testing.assert_array_equal(acc.curves()[50], [50.0, 50.0])
    with pytest.raises(ValueError, match=r"gt_boxes\[0\]"):
        acc.update(flat[None], [np.full((2, 4), -1)])
    with pytest.raises(ValueError, match="entries"):
        acc.update(np.stack([flat, flat]), [[[0, 0, 1, 1]]])
    acc.reset()
    assert acc.num_images == 0
    with pytest.raises(ValueError):
        acc.result()


# --- PxAP -----------------------------------------------------------------------------


def test_pxap_hand_computed():
    ts = [0.0, 0.5]
    # fg scores 0.9, 0.3; bg 0.6, 0.1; one ignored pixel with a high score.
    # t = 0.5: predicted {0.9, 0.6}: precision 1/2, recall 1/2
    # t = 0.0: all predicted:         precision 1/2, recall 1
    # AP = 0.5 * (1/2 - 0) + 0.5 * (1 - 1/2) = 0.5
    m = np.array([[0.9, 0.6, 1.0], [0.3, 0.1, 0.0]])
    k = np.array([[1, 0, 255], [1, 0, 255]], np.uint8)
    p = metrics.PxAP(ts)
    p.update(m[None], k[None])
    assert p.result()["pxap"] == pytest.approx(50.0)
    # perfect separation: t = 0.5 gives precision 1, recall 1 -> AP 1
    p = metrics.PxAP(ts)
    p.update(
        np.array([[[0.9, 0.8], [0.1, 0.2]]]), np.array([[[1, 1], [0, 0]]], np.uint8)
    )
    assert p.result()["pxap"] == pytest.approx(100.0)


def test_pxap_streaming_and_errors():
    rng = np.random.default_rng(1)
    maps = rng.uniform(0, 1, (4, 6, 6))
    masks = (rng.uniform(0, 1, (4, 6, 6)) > 0.5).astype(np.uint8)
    a, b = metrics.PxAP(), metrics.PxAP()
    a.update(maps, masks)
    b.update(maps[:2], masks[:2])
    b.update(maps[2:], masks[2:])
    assert a.result()["pxap"] == pytest.approx(b.result()["pxap"])
    with pytest.raises(ValueError, match="0, 1 or 255"):
        a.update(maps[:1], np.full((1, 6, 6), 3, np.uint8))
    with pytest.raises(ValueError, match="no foreground"):
        c = metrics.PxAP()
        c.update(maps[:1], np.zeros((1, 6, 6), np.uint8))
        c.result()


# --- Loc accuracies, pointing game, CorLoc, top-k ------------------------------------------


def test_localization_accuracy_boxes_and_maps():
    gt = [[[10, 10, 29, 29]], [[10, 10, 29, 29]], [[10, 10, 29, 29]]]
    pred = [[10, 10, 29, 29], [12, 12, 29, 29], [40, 40, 50, 50]]  # IoU 1, 324/400, 0
    loc = metrics.LocalizationAccuracy(cam_threshold=0.5)
    loc.update_boxes(
        pred, gt, top1_correct=[True, False, True], top5_correct=[True, True, True]
    )
    r = loc.result()
    assert r["gt_known_loc"] == pytest.approx(200 / 3)
    assert r["top1_loc"] == pytest.approx(100 / 3)
    assert r["top5_loc"] == pytest.approx(200 / 3)
    m = np.zeros((40, 40))
    m[10:30, 10:30] = 1.0  # box (10, 10, 30, 30): IoU 400 / 441 with GT
    loc2 = metrics.LocalizationAccuracy(cam_threshold=0.5)
    loc2.update(m[None], gt[:1], [False], [True])
    assert loc2.result() == {"top1_loc": 0.0, "top5_loc": 100.0, "gt_known_loc": 100.0}


def test_pointing_game_tolerance_and_class_mean():
    def peak(y, x):
        m = np.zeros((64, 64))
        m[y, x] = 1.0
        return m

    pg = metrics.PointingGame(tolerance=15)
    maps = np.stack([peak(20, 20), peak(20, 20), peak(0, 0)])
    gts = [
        [[30, 10, 50, 40]],  # dx = 10 -> hit
        [[36, 10, 50, 40]],  # dx = 16 -> miss
        [[10, 11, 20, 20]],
    ]  # distance hypot(10, 11) = 14.9 -> hit
    pg.update(maps, gts, class_ids=[0, 1, 1])
    r = pg.result()
    assert r["pointing_game_overall"] == pytest.approx(200 / 3)
    assert r["pointing_game"] == pytest.approx((1.0 + 0.5) / 2 * 100)
    pg0 = metrics.PointingGame(tolerance=0)
    pg0.update(maps[:1], gts[:1])
    assert pg0.result()["pointing_game"] == 0.0


def test_corloc_per_class_mean():
    c = metrics.CorLoc(num_classes=3)
    gt = [[[0, 0, 9, 9]]] * 3
    c.update([[0, 0, 9, 9], [20, 20, 30, 30], [0, 0, 9, 8]], gt, class_ids=[0, 0, 1])
    # class 0: 1 of 2; class 1: IoU 90/100 -> 1 of 1; class 2 unseen
    assert c.result()["corloc"] == pytest.approx(75.0)
    with pytest.raises(ValueError, match="class_ids"):
        c.update([[0, 0, 1, 1]], [[[0, 0, 1, 1]]], class_ids=[3])


def test_top_k_correct():
    logits = np.array([[0.1, 0.5, 0.4], [0.9, 0.05, 0.05]])
    np.testing.assert_array_equal(
        metrics.top_k_correct(logits, [2, 1], 1), [False, False]
    )
    np.testing.assert_array_equal(
        metrics.top_k_correct(logits, [2, 1], 2), [True, True]
    )
    np.testing.assert_array_equal(
        metrics.top_k_correct(logits, [2, 2], 2), [True, False]
    )
    with pytest.raises(ValueError, match="labels"):
        metrics.top_k_correct(logits, [0, 5], 1)
