"""The papers' protocol pieces (wsol_keras.evaluation.paper_protocols) on tiny hand-made inputs."""

import cv2
import numpy as np
import pytest

from wsol_keras.localization import primitives
from wsol_keras.evaluation import paper_protocols
def test_ten_crop_order_is_torchvision_tencrop():
    # 4x4 image of distinct values, crop 2: expected crops written out by hand.
    img = np.arange(16).reshape(4, 4, 1)
    crops = paper_protocols.ten_crop(img, 2)[..., 0]
    assert crops.shape == (10, 2, 2)
    np.testing.assert_array_equal(crops[0], [[0, 1], [4, 5]])  # top-left
    np.testing.assert_array_equal(crops[1], [[2, 3], [6, 7]])  # top-right
    np.testing.assert_array_equal(crops[2], [[8, 9], [12, 13]])  # bottom-left
    np.testing.assert_array_equal(crops[3], [[10, 11], [14, 15]])  # bottom-right
    np.testing.assert_array_equal(crops[4], [[5, 6], [9, 10]])  # center
    # flipped image's top-left = mirror of the original top-right
    np.testing.assert_array_equal(crops[5], [[3, 2], [7, 6]])
    np.testing.assert_array_equal(crops[9], [[6, 5], [10, 9]])


def test_ten_crop_scores_average_softmax():
    logits = np.zeros((10, 3))
    logits[:5, 0] = np.log(2.0)  # softmax (0.5, 0.25, 0.25) on five crops
    # other five: uniform 1/3
    expected = 0.5 * np.array([0.5, 0.25, 0.25]) + 0.5 * np.array([1, 1, 1]) / 3
    np.testing.assert_allclose(paper_protocols.ten_crop_scores(logits), expected, rtol=1e-12)


def test_ten_crop_map_average_undoes_crops_and_flips():
    # Maps that are exactly the crops of a reference map must average back to it.
    rng = np.random.default_rng(0)
    ref = rng.uniform(size=(6, 6))
    maps = paper_protocols.ten_crop(ref[..., None], 4)[..., 0]
    np.testing.assert_allclose(paper_protocols.ten_crop_map_average(maps, 6, 6), ref, rtol=1e-12)


def test_object_energy_is_the_share_inside_boxes():
    cam = np.zeros((4, 4), np.float32)
    cam[:2, :2] = 3.0  # top-left quarter holds 3/4 of the energy
    cam[2:, 2:] = 1.0
    # Same size: no resampling; box over the top-left quarter.
    assert paper_protocols.object_energy(cam, [[0, 0, 1, 1]], 4, 4) == pytest.approx(0.75)
    # Two overlapping boxes count each pixel once.
    assert paper_protocols.object_energy(cam, [[0, 0, 1, 1], [0, 0, 3, 3]], 4, 4) == pytest.approx(1.0)


def test_union_box_and_danet_threshold_sweep():
    cam = np.zeros((10, 10))
    cam[1:3, 1:3] = 1.0
    cam[6:8, 6:8] = 0.2
    assert paper_protocols.union_box(cam, 0.5) == (1, 1, 2, 2)
    assert paper_protocols.union_box(cam, 0.1) == (1, 1, 7, 7)  # both blobs
    assert paper_protocols.union_box(cam, 2.0) == (0, 0, 0, 0)
    gt = [np.array([[1, 1, 7, 7]])]
    # IoU: box (1,1,2,2) area 4 vs gt 49 -> 0.08; at 0.05..0.2 the union box
    # covers both blobs -> IoU 1; at 0.25, 0.3 only the first blob.
    sweep = paper_protocols.UnionBoxSweep()
    sweep.update(cam, gt[0])
    assert sweep.result() == {
        "0.05": 100.0, "0.1": 100.0, "0.15": 100.0, "0.2": 100.0, "0.25": 0.0, "0.3": 0.0
    }
    # A second image hit at no threshold halves every accuracy.
    sweep.update(cam, np.array([[9, 9, 9, 9]]))
    assert sweep.result()["0.05"] == 50.0 and sweep.result()["0.3"] == 0.0


def test_cv2_bicubic_upsampling_equals_cv2_inter_cubic():
    # The evaluator's map upsampling (wsolevaluation inference.py: cv2.resize
    # INTER_CUBIC), written as matrices for the graph.
    rng = np.random.default_rng(0)
    for h, w, H, W in [(7, 7, 56, 56), (14, 14, 224, 224), (5, 3, 17, 11)]:
        maps = rng.normal(size=(2, h, w)).astype(np.float32)
        got = primitives.upsample_maps(maps, (H, W), method="cv2_bicubic").numpy()
        for m, g in zip(maps, got):
            ref = cv2.resize(m, (W, H), interpolation=cv2.INTER_CUBIC)
            np.testing.assert_allclose(g, ref, atol=1e-5)
    with pytest.raises(ValueError, match="upscaling"):
        primitives.cv2_cubic_matrix(3, 5)
