"""Mask coverage figures (wsol_keras.evaluation.mask_coverage), worked by hand
on 3 x 3 and 2 x 2 arrays."""

import numpy as np
import pytest

from wsol_keras.evaluation import mask_coverage

# One image: values >= 0.5 at (0,0), (0,1), (1,0); >= 0.15 adds (1,1).
MAP = np.array([[0.9, 0.6, 0.1], [0.5, 0.2, 0.0], [0.0, 0.0, 0.0]])
MASK = np.array([[1, 1, 0], [1, 0, 0], [0, 0, 0]], np.uint8)  # |O| = 3 of 9


def test_region_inside_the_object():
    r = mask_coverage.region_coverage(MAP, MASK, 0.5)
    assert r["object_covered"][0] == pytest.approx(3 / 3)
    assert r["outside_object"][0] == pytest.approx(0 / 3)
    assert r["region_area"][0] == pytest.approx(3 / 9)
    assert r["object_area"][0] == pytest.approx(3 / 9)


def test_region_spilling_out_of_the_object():
    r = mask_coverage.region_coverage(MAP, MASK, 0.15)
    assert r["object_covered"][0] == pytest.approx(1.0)
    assert r["outside_object"][0] == pytest.approx(1 / 4)  # (1,1) is background
    assert r["region_area"][0] == pytest.approx(4 / 9)
    # A high threshold keeps only (0,0): 1 of the 3 object pixels.
    high = mask_coverage.region_coverage(MAP, MASK, 0.7)
    assert high["object_covered"][0] == pytest.approx(1 / 3)


def test_mass_inside_is_object_energy_with_negatives_clipped():
    # 0.9 + 0.6 + 0.5 inside, 2.3 in all.
    assert mask_coverage.mass_inside(MAP, MASK)[0] == pytest.approx(2.0 / 2.3)
    m = np.array([[-1.0, 2.0], [1.0, 0.0]])
    o = np.array([[1, 0], [1, 0]])
    assert mask_coverage.mass_inside(m, o)[0] == pytest.approx(1.0 / 3.0)
    # A uniform map's energy is the object's area fraction.
    assert mask_coverage.mass_inside(np.ones((3, 3)), MASK)[0] == pytest.approx(3 / 9)


def test_region_overlap():
    r = np.array([[1, 1], [0, 0]], bool)
    q = np.array([[0, 1], [1, 0]], bool)
    out = mask_coverage.region_overlap(r, q)
    assert out["inside"][0] == pytest.approx(1 / 2)
    assert out["iou"][0] == pytest.approx(1 / 3)
    empty = mask_coverage.region_overlap(np.zeros((2, 2)), np.zeros((2, 2)))
    assert np.isnan(empty["inside"][0]) and np.isnan(empty["iou"][0])


def test_accumulated_means_leave_out_undefined_images():
    acc = mask_coverage.MaskCoverage(threshold=0.15)
    acc.update(MAP[None], MASK[None])
    # No object and a zero map: coverage, spill and mass undefined.
    acc.update(np.zeros((1, 3, 3)), np.zeros((1, 3, 3)))
    out = acc.result()
    assert out["num_images"] == 2
    assert out["object_covered"] == pytest.approx(100.0)
    assert out["outside_object"] == pytest.approx(25.0)
    assert out["mass_inside"] == pytest.approx(100.0 * 2.0 / 2.3)
    assert out["region_area"] == pytest.approx(100.0 * (4 / 9 + 0) / 2)
    assert out["object_area"] == pytest.approx(100.0 * (3 / 9) / 2)
    assert out["undefined"] == {"object_covered": 1, "outside_object": 1, "mass_inside": 1}


def test_energy_maps_replace_the_maps_for_the_mass():
    acc = mask_coverage.MaskCoverage(threshold=0.5)
    acc.update(MAP[None], MASK[None], energy_maps=np.ones((1, 3, 3)))
    assert acc.result()["mass_inside"] == pytest.approx(100.0 / 3)


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="differ in shape"):
        mask_coverage.region_coverage(np.zeros((1, 3, 3)), np.zeros((1, 4, 4)), 0.5)
