"""The whole-image localization check of the evaluation (coverage.py)."""

import numpy as np

from wsol_keras.evaluation import coverage


def test_flat_maps_with_whole_image_boxes_are_flagged():
    check = coverage.CoverageCheck(threshold=0.2)
    rng = np.random.default_rng(0)
    for _ in range(4):
        flat = 0.5 + 0.5 * rng.uniform(size=(16, 16))  # noise stretched to [0.5, 1]
        check.update(flat, [0, 0, 15, 15], np.array([[4, 4, 11, 11]]))
    out = check.result()
    assert out["localization_collapsed"] is True
    assert out["loc_box_full_image"] == 100.0
    assert out["map_coverage_mean"] == 100.0
    # GT 8 x 8 of 16 x 16 = 25 %.
    assert out["gt_box_area_mean"] == 25.0
    assert "whole-image" in out["localization_warning"]


def test_object_sized_boxes_and_large_objects_are_not_flagged():
    check = coverage.CoverageCheck(threshold=0.5)
    m = np.zeros((10, 10))
    m[2:6, 2:6] = 1.0
    for _ in range(3):
        check.update(m, [2, 2, 5, 5], np.array([[2, 2, 5, 5]]))
    out = check.result()
    assert out["localization_collapsed"] is False
    assert out["loc_box_area_mean"] == 16.0  # 4 x 4 of 100 pixels
    assert out["map_coverage_mean"] == 16.0
    assert "localization_warning" not in out
    # An object that fills the frame: a whole-image box is right, no flag.
    big = coverage.CoverageCheck(threshold=0.5)
    big.update(np.ones((10, 10)), [0, 0, 9, 9], np.array([[0, 0, 9, 9]]))
    assert big.result()["localization_collapsed"] is False
