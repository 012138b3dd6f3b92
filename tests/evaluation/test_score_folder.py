"""wsol-score's map loading: wsolevaluation's layout, sizes and validity."""

import os

import cv2
import numpy as np
import pytest

from wsol_keras.evaluation import score_folder
def _save(root, image_id, array):
    path = os.path.join(root, image_id + ".npy")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.save(path, array)


def test_evaluation_size_map_is_used_as_is(tmp_path):
    m = np.random.RandomState(0).rand(16, 16).astype(np.float32)
    _save(str(tmp_path), "a/b.jpg", m)
    np.testing.assert_array_equal(score_folder.load_scoremap(str(tmp_path), "a/b.jpg", 16), m)


def test_other_sizes_are_resized_like_wsolevaluation_inference(tmp_path):
    """inference.py: cv2.resize(cam, size, INTER_CUBIC), then min-max to [0, 1]."""
    raw = np.random.RandomState(1).rand(5, 9).astype(np.float32) * 7 - 2
    _save(str(tmp_path), "x", raw)
    r = cv2.resize(raw, (16, 16), interpolation=cv2.INTER_CUBIC).astype(np.float64)
    expected = (r - r.min()) / (r.max() - r.min())
    got = score_folder.load_scoremap(str(tmp_path), "x", 16)
    assert got.shape == (16, 16)
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_bad_maps_name_the_file(tmp_path):
    root = str(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"missing\.png\.npy: no score map"):
        score_folder.load_scoremap(root, "missing.png", 8)
    _save(root, "big", np.full((8, 8), 2.0))
    with pytest.raises(ValueError, match=r"big\.npy: values in \[2, 2\]"):
        score_folder.load_scoremap(root, "big", 8)
    _save(root, "cube", np.zeros((8, 8, 3)))
    with pytest.raises(ValueError, match=r"cube\.npy: expected a 2-D"):
        score_folder.load_scoremap(root, "cube", 8)
    m = np.zeros((4, 4))
    m[1, 1] = np.nan
    _save(root, "nan", m)
    with pytest.raises(ValueError, match=r"nan\.npy: the map holds NaN"):
        score_folder.load_scoremap(root, "nan", 8)
