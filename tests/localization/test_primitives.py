"""cams.py: class-map selection (GT / top-K, SLT-Net Eq. 9) and normalization."""

import numpy as np
import tensorflow as tf

from wsol_keras.localization import primitives
def test_select_single_class_gathers_that_channel():
    rng = np.random.default_rng(0)
    maps = rng.normal(size=(3, 4, 5, 6)).astype(np.float32)
    ids = np.array([5, 0, 2])
    out = primitives.select_class_maps(maps, ids).numpy()
    for i, c in enumerate(ids):
        np.testing.assert_allclose(out[i], maps[i, :, :, c])


def test_select_topk_averages_the_k_maps():
    rng = np.random.default_rng(1)
    maps = rng.normal(size=(2, 3, 3, 5)).astype(np.float32)
    logits = np.array([[0.1, 3.0, 2.0, -1.0, 0.5], [5.0, 4.0, 0.0, 0.0, 6.0]])
    ids = primitives.topk_class_ids(logits, 2).numpy()
    np.testing.assert_array_equal(np.sort(ids, axis=1), [[1, 2], [0, 4]])
    out = primitives.select_class_maps(maps, ids).numpy()
    np.testing.assert_allclose(
        out[0], (maps[0, ..., 1] + maps[0, ..., 2]) / 2, rtol=1e-6
    )
    np.testing.assert_allclose(
        out[1], (maps[1, ..., 0] + maps[1, ..., 4]) / 2, rtol=1e-6
    )


def test_normalize_minmax_and_degenerate_maps_become_zero():
    m = np.zeros((3, 2, 2), np.float32)
    m[0] = [[1.0, 3.0], [5.0, 2.0]]
    m[1] = 7.0  # flat
    m[2] = [[np.nan, 1.0], [0.0, 2.0]]
    out = primitives.normalize_maps(m).numpy()
    np.testing.assert_allclose(out[0], [[0.0, 0.5], [1.0, 0.25]])
    np.testing.assert_array_equal(out[1], 0.0)
    np.testing.assert_array_equal(out[2], 0.0)


def test_localization_maps_upsamples_to_size_in_unit_range():
    rng = np.random.default_rng(2)
    maps = rng.normal(size=(2, 4, 4, 3)).astype(np.float32)
    out = primitives.localization_maps(maps, np.array([0, 2]), 16).numpy()
    assert out.shape == (2, 16, 16)
    assert out.min() == 0.0 and np.isclose(out.max(), 1.0)


def test_infinite_map_becomes_zero_and_axis_is_per_class():
    # wsolevaluation's normalize_scoremap zeroes a map it cannot normalize; a
    # map with +inf (a diverged model) is such a map too.
    m = np.array([[[1.0, np.inf], [0.0, 2.0]]], np.float32)
    np.testing.assert_array_equal(primitives.normalize_maps(m).numpy(), 0.0)
    # [B, h, w, C]: each class map normalized on its own (ACoL's fusion).
    four = np.stack([np.arange(4.0).reshape(2, 2), 10 * np.ones((2, 2))], -1)[None]
    out = primitives.normalize_maps(four.astype(np.float32)).numpy()
    np.testing.assert_allclose(out[0, ..., 0], [[0, 1 / 3], [2 / 3, 1]], rtol=1e-6)
    np.testing.assert_array_equal(out[0, ..., 1], 0.0)


def test_upsample_rank3_and_rank4_are_tf_bilinear():
    rng = np.random.default_rng(3)
    maps = rng.normal(size=(2, 3, 3, 4)).astype(np.float32)
    want = tf.image.resize(maps, [7, 5], method="bilinear").numpy()
    np.testing.assert_allclose(primitives.upsample_maps(maps, (7, 5)), want, atol=1e-6)
    np.testing.assert_allclose(
        primitives.upsample_maps(maps[..., 1], (7, 5)), want[..., 1], atol=1e-6
    )


def test_top1_breaks_ties_by_the_lower_id():
    logits = np.array([[1.0, 5.0, 5.0], [2.0, 2.0, 0.0]], np.float32)
    np.testing.assert_array_equal(primitives.top1_class_ids(logits).numpy(), [1, 0])
