"""SPN's protocol metrics on hand-worked examples (numbers worked out by hand)."""

import math

import numpy as np
import pytest

from wsol_keras.evaluation import multilabel_metrics as mm
def test_label_states_positive_beats_difficult():
    # class 0: one difficult + one normal -> positive; class 2: difficult only.
    s = mm.label_states([0, 0, 2], [True, False, True], 4)
    np.testing.assert_array_equal(s, [1, -1, 0, -1])


def test_max_point_is_x_y():
    m = np.zeros((4, 6))
    m[3, 1] = 5.0  # row 3, column 1
    assert mm.max_point(m) == (1, 3)


def test_pointing_game_tolerance_and_per_class_mean():
    # Image 0: class 0 box [10,10,20,20]; class 1 box [50,50,60,60].
    # Image 1: class 0 box [0,0,5,5].
    boxes = [np.array([[10, 10, 20, 20], [50, 50, 60, 60]]), np.array([[0, 0, 5, 5]])]
    labels = [np.array([0, 1]), np.array([0])]
    points = [
        {0: (35, 15), 1: (55, 55)},  # class 0: 15 px right of the box -> hit at tol 15
        {0: (21, 21)},  # 16 px away in x and y from [0,5] -> miss at tol 15
    ]
    r = mm.pointing_game(points, boxes, labels, num_classes=3, tolerance=15)
    # class 0: 1 of 2; class 1: 1 of 1; class 2: no image -> nan, excluded.
    np.testing.assert_allclose(r["per_class"][:2], [0.5, 1.0])
    assert math.isnan(r["per_class"][2])
    assert r["mean"] == pytest.approx(0.75)
    np.testing.assert_array_equal(r["counts"], [2, 1, 0])
    # Tolerance 14 turns image 0's class-0 point into a miss.
    r14 = mm.pointing_game(points, boxes, labels, num_classes=3, tolerance=14)
    np.testing.assert_allclose(r14["per_class"][:2], [0.0, 1.0])


def test_pointing_game_subset_and_missing_points_count_as_misses():
    boxes = [np.array([[0, 0, 9, 9]]), np.array([[0, 0, 9, 9]])]
    labels = [np.array([0]), np.array([0])]
    points = [{0: (5, 5)}, {}]
    r = mm.pointing_game(points, boxes, labels, 1)
    assert r["mean"] == pytest.approx(0.5) and r["missing"] == 1
    r = mm.pointing_game(points, boxes, labels, 1, subset=[True, False])
    assert r["mean"] == pytest.approx(1.0) and r["missing"] == 0


def test_zhang_difficult_needs_small_object_and_two_classes():
    size = (100, 100)  # area 10000, small < 2500
    boxes = [
        np.array([[0, 0, 10, 10], [0, 0, 90, 90]]),  # small + 2 classes -> difficult
        np.array([[0, 0, 10, 10], [20, 20, 30, 30]]),  # small, one class -> no
        np.array([[0, 0, 60, 60], [0, 0, 90, 90]]),  # 2 classes, none small (3600) -> no
    ]
    labels = [np.array([0, 1]), np.array([2, 2]), np.array([0, 1])]
    np.testing.assert_array_equal(
        mm.zhang_difficult_images(boxes, labels, [size] * 3), [True, False, False]
    )


def test_spn_box_threshold_at_mean_inclusive():
    m = np.zeros((5, 6))
    m[1, 2] = 6.0
    m[3, 4] = 3.0  # mean = 9/30 = 0.3; foreground = the two pixels
    np.testing.assert_array_equal(mm.spn_box(m), [2, 1, 4, 3])
    # A constant map: every pixel equals the mean -> whole image.
    np.testing.assert_array_equal(mm.spn_box(np.ones((3, 4))), [0, 0, 3, 2])


def test_iou_inclusive_by_hand():
    # [0,0,9,9] is 10x10=100 px; [5,5,14,14] 100 px; overlap 5x5=25; union 175.
    np.testing.assert_allclose(mm.iou_inclusive([0, 0, 9, 9], [[5, 5, 14, 14]]), [25 / 175])


def test_corloc_uses_positive_images_only():
    # Image 0: class 0 positive, predicted box exact -> correct.
    # Image 1: class 0 positive, predicted [0,0,9,9] vs gt [5,5,14,14]: IoU 1/7 -> wrong.
    # Image 2: class 0 difficult only -> not counted; class 1 positive, no prediction.
    boxes = [np.array([[0, 0, 9, 9]]), np.array([[5, 5, 14, 14]]),
             np.array([[0, 0, 9, 9], [0, 0, 4, 4]])]
    labels = [np.array([0]), np.array([0]), np.array([0, 1])]
    difficult = [np.array([False]), np.array([False]), np.array([True, False])]
    preds = [{0: [0, 0, 9, 9]}, {0: [0, 0, 9, 9]}, {0: [0, 0, 9, 9]}]
    r = mm.corloc(preds, boxes, labels, difficult, 2)
    np.testing.assert_allclose(r["per_class"], [0.5, 0.0])
    np.testing.assert_array_equal(r["counts"], [2, 1])
    assert r["missing"] == 1 and r["mean"] == pytest.approx(0.25)


def test_average_precision_by_hand_skips_difficult():
    # Ranking by score: a(+) 0.9, b(difficult) 0.8, c(-) 0.7, d(+) 0.6.
    # Without b: precisions at positives: 1/1 and 2/3 -> AP = (1 + 2/3) / 2 = 5/6.
    ap = mm.average_precision([0.9, 0.8, 0.7, 0.6], [1, 0, -1, 1])
    assert ap == pytest.approx(5 / 6)
    # Counting b as a negative would give (1 + 2/4) / 2 = 0.75: must differ.
    assert mm.average_precision([0.9, 0.8, 0.7, 0.6], [1, -1, -1, 1]) == pytest.approx(0.75)


def test_classification_map_ignores_classes_without_positives():
    scores = np.array([[0.9, 0.1], [0.2, 0.3]])
    states = np.array([[1, -1], [-1, -1]])
    r = mm.classification_map(scores, states)
    assert r["per_class"][0] == pytest.approx(1.0) and math.isnan(r["per_class"][1])
    assert r["mean"] == pytest.approx(1.0)


def test_pointing_game_per_pair_subset_from_flag_file(tmp_path):
    # Image "a": classes 0 and 1, only (a, 1) is a difficult pair; image "b": class 0.
    p = tmp_path / "flags.txt"
    p.write_text("a\t0\t1\nb\t0\t0\n")
    flags = mm.read_difficult_flags(str(p), ["a.jpg", "b"], 2)
    np.testing.assert_array_equal(flags, [[False, True], [False, False]])
    boxes = [np.array([[0, 0, 9, 9], [50, 50, 60, 60]]), np.array([[0, 0, 9, 9]])]
    labels = [np.array([0, 1]), np.array([0])]
    points = [{0: (100, 100), 1: (55, 55)}, {0: (5, 5)}]
    r = mm.pointing_game(points, boxes, labels, 2, subset=flags)
    np.testing.assert_array_equal(r["counts"], [0, 1])
    assert r["mean"] == pytest.approx(1.0)  # only the (a, 1) hit counts
    bad = tmp_path / "bad.txt"
    bad.write_text("a 0 1 1\n")
    with pytest.raises(ValueError, match=r"bad\.txt:1: expected '<image name>' and 2"):
        mm.read_difficult_flags(str(bad), ["a"], 2)
