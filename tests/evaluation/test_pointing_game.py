"""Pointing game as SPN Sec. 4.2 defines it (Zhang et al.'s protocol): per-class
mean of Hits / (Hits + Misses), tolerance in original-image pixels. Expected
values are worked out by hand below (numpy only builds the inputs)."""

import os

import numpy as np
import pytest

from wsol_keras.evaluation import metrics
def _peak(y, x, size=10):
    m = np.zeros((size, size))
    m[y, x] = 1.0
    return m


# 10 x 10 maps; boxes in map pixels; original sizes (height, width).
#   A class 0: peak (y5,x5), box x 0..3 -> dx = 2 map px; image 100 x 100 -> 20 px: miss
#   B class 0: same peak/box; image 100 high x 50 wide -> dx = 2 * 5 = 10 px: hit
#   C class 0: peak inside the box: hit
#   D class 1: peak (0,0), box from (x4,y3): dx 4, dy 3 map px; image 40 x 40 ->
#      16, 12 px -> 20 px: miss
MAPS = np.stack([_peak(5, 5), _peak(5, 5), _peak(2, 2), _peak(0, 0)])
GTS = [[[0, 0, 3, 9]], [[0, 0, 3, 9]], [[1, 1, 4, 4]], [[4, 3, 9, 9]]]
CLASSES = [0, 0, 0, 1]
SIZES = [[100, 100], [100, 50], [30, 30], [40, 40]]


def test_per_class_mean_in_original_pixels_by_hand():
    pg = metrics.PointingGame(tolerance=15)
    pg.update(MAPS[:2], GTS[:2], CLASSES[:2], SIZES[:2])  # two batches stream
    pg.update(MAPS[2:], GTS[2:], CLASSES[2:], SIZES[2:])
    r = pg.result()
    # class 0: 2 hits of 3; class 1: 0 of 1 -> mean (2/3 + 0) / 2
    assert r["pointing_game"] == pytest.approx(100 * (2 / 3 + 0) / 2)
    assert r["pointing_game_overall"] == pytest.approx(100 * 2 / 4)
    assert r["pointing_tolerance"] == 15.0
    assert r["pointing_tolerance_unit"] == "original-image pixels"
    assert r["pointing_num_classes"] == 2


def test_map_pixels_when_no_original_size_and_said_so():
    # Distances 2, 2, 0, 5 map px: all within 15 -> 100 (the observation),
    # and the result states the unit.
    pg = metrics.PointingGame(tolerance=15)
    pg.update(MAPS, GTS, CLASSES)
    r = pg.result()
    assert r["pointing_game"] == 100.0
    assert r["pointing_tolerance_unit"] == "map pixels"


def test_tolerance_boundary_and_mixed_units_refused():
    # D at tolerance 20 (distance exactly 20 original px) is a hit
    pg = metrics.PointingGame(tolerance=20)
    pg.update(MAPS[3:], GTS[3:], CLASSES[3:], SIZES[3:])
    assert pg.result()["pointing_game"] == 100.0
    with pytest.raises(ValueError, match="original_sizes for every batch"):
        pg.update(MAPS[:1], GTS[:1], CLASSES[:1])
    with pytest.raises(ValueError, match=r"original_sizes\[1\]"):
        metrics.PointingGame().update(MAPS[:2], GTS[:2], None, [[10, 10], [0, 5]])


def test_sources_yield_original_size_for_the_tolerance(tmp_path):
    # The pointing game needs each image's size before the S x S resize.
    import cv2
    from wsol_keras import data as wdata
    root, meta = tmp_path / "img", tmp_path / "meta" / "T"
    os.makedirs(root)
    assert cv2.imwrite(str(root / "a.png"), np.zeros((20, 30, 3), np.uint8))  # h 20, w 30
    for split in ("train", "test"):
        os.makedirs(meta / split)
        (meta / split / "image_ids.txt").write_text("a.png\n")
        (meta / split / "class_labels.txt").write_text("a.png,0\n")
    c = wdata.default_data_config()
    c.name, c.root, c.metadata, c.image_size = "wsol_metadata", str(root), str(meta), 16
    (e,) = list(wdata.get_source(c).dataset("test").as_numpy_iterator())
    assert e["original_size"].tolist() == [20, 30]
    syn = wdata.default_data_config()
    syn.synthetic.num_train = syn.synthetic.num_val = syn.synthetic.num_test = 1
    (e,) = list(wdata.get_source(syn).dataset("test").as_numpy_iterator())
    assert e["original_size"].tolist() == [64, 64]  # rendered at S x S
