"""Tests of ComplementaryErase (ACoL Sec. 3.2, Algorithm 1) against numpy."""

import numpy as np
import pytest
import tensorflow as tf

from layer_test_util import run_layer_test
from wsol_keras.layers.complementary_erase import ComplementaryErase


def rand(shape, seed):
    return np.random.RandomState(seed).rand(*shape).astype("float32")


def np_normalized(maps, class_ids):
    sel = np.stack([maps[b, :, :, c] for b, c in enumerate(class_ids)])
    lo = sel.min(axis=(1, 2), keepdims=True)
    hi = sel.max(axis=(1, 2), keepdims=True)
    return (sel - lo) / (hi - lo)


def np_bilinear(img, out_h, out_w):
    """Half-pixel-centre bilinear resize with edge clamping (one 2D map)."""
    in_h, in_w = img.shape
    out = np.zeros((out_h, out_w))
    for y in range(out_h):
        sy = min(max((y + 0.5) * in_h / out_h - 0.5, 0), in_h - 1)
        y0 = int(np.floor(sy))
        y1 = min(y0 + 1, in_h - 1)
        for x in range(out_w):
            sx = min(max((x + 0.5) * in_w / out_w - 0.5, 0), in_w - 1)
            x0 = int(np.floor(sx))
            x1 = min(x0 + 1, in_w - 1)
            fy, fx = sy - y0, sx - x0
            out[y, x] = (
                img[y0, x0] * (1 - fy) * (1 - fx)
                + img[y0, x1] * (1 - fy) * fx
                + img[y1, x0] * fy * (1 - fx)
                + img[y1, x1] * fy * fx
            )
    return out


def test_erases_exactly_where_normalized_map_reaches_delta():
    feats = rand((3, 5, 6, 4), 0) + 0.1
    maps = rand((3, 5, 6, 7), 1)
    labels = np.array([2, 0, 6])
    out = np.asarray(ComplementaryErase(delta=0.6)(feats, maps, labels, training=True))
    norm = np_normalized(maps, labels)
    erased = norm >= 0.6
    assert erased.any() and (~erased).any()
    np.testing.assert_array_equal(out[erased], 0.0)
    np.testing.assert_array_equal(out[~erased], feats[~erased])


def test_threshold_is_inclusive_on_a_worked_example():
    # Normalized map of class 1: [[0, .25], [.5, 1]] -> delta .5 erases 2 cells.
    maps = np.zeros((1, 2, 2, 2), "float32")
    maps[0, :, :, 1] = [[2.0, 3.0], [4.0, 6.0]]
    feats = np.ones((1, 2, 2, 1), "float32")
    out = ComplementaryErase(delta=0.5)(feats, maps, np.array([1]), training=True)
    np.testing.assert_array_equal(np.asarray(out)[0, :, :, 0], [[1, 1], [0, 0]])


def test_resizes_map_to_feature_size_bilinearly():
    feats = rand((2, 6, 8, 3), 2) + 0.1
    maps = rand((2, 3, 4, 5), 3)
    labels = np.array([4, 1])
    out = np.asarray(ComplementaryErase(delta=0.55)(feats, maps, labels, training=True))
    norm = np_normalized(maps, labels)
    for b in range(2):
        up = np_bilinear(norm[b], 6, 8)
        decided = np.abs(up - 0.55) > 1e-5  # skip cells on the threshold
        erased = (up >= 0.55) & decided
        kept = (up < 0.55) & decided
        assert erased.any() and kept.any()
        np.testing.assert_array_equal(out[b][erased], 0.0)
        np.testing.assert_array_equal(out[b][kept], feats[b][kept])


def test_labels_in_training_prediction_at_inference():
    feats = np.ones((1, 4, 4, 2), "float32")
    maps = np.zeros((1, 4, 4, 3), "float32")
    maps[0, 0, 0, 0] = 1.0  # class 0 peaks at (0, 0)
    maps[0, 3, 3, 2] = 5.0  # class 2 peaks at (3, 3) and has the top mean
    labels = np.array([0])
    layer = ComplementaryErase(delta=0.9, erase_at_inference=True)
    train_out = np.asarray(layer(feats, maps, labels, training=True))[0, :, :, 0]
    infer_out = np.asarray(layer(feats, maps, labels, training=False))[0, :, :, 0]
    no_label = np.asarray(layer(feats, maps, training=True))[0, :, :, 0]
    assert train_out[0, 0] == 0 and train_out.sum() == 15  # ground truth class 0
    assert infer_out[3, 3] == 0 and infer_out.sum() == 15  # top-1 class 2
    assert no_label[3, 3] == 0 and no_label.sum() == 15  # no labels: top-1
    gt_at_test = ComplementaryErase(
        delta=0.9, erase_at_inference=True, labels_at_inference=True
    )
    out = np.asarray(gt_at_test(feats, maps, labels, training=False))[0, :, :, 0]
    assert out[0, 0] == 0 and out.sum() == 15


def test_inference_path_is_identity_by_default():
    feats = rand((2, 4, 4, 3), 4)
    maps = rand((2, 4, 4, 5), 5)
    layer = ComplementaryErase()
    np.testing.assert_array_equal(layer(feats, maps, training=False), feats)
    np.testing.assert_array_equal(layer(feats, maps), feats)
    erased = np.asarray(ComplementaryErase(erase_at_inference=True)(feats, maps))
    assert (erased == 0).any()


def test_mask_is_constant_under_gradient_tape():
    feats = tf.constant(rand((2, 4, 5, 3), 6) + 0.1)
    maps = tf.constant(rand((2, 4, 5, 6), 7))
    labels = np.array([3, 5])
    layer = ComplementaryErase(delta=0.6)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([feats, maps])
        loss = tf.reduce_sum(layer(feats, maps, labels, training=True))
    g_maps = tape.gradient(loss, maps)
    g_feats = tape.gradient(loss, feats).numpy()
    assert g_maps is None or not np.any(g_maps.numpy())
    keep = (np_normalized(maps.numpy(), labels) < 0.6).astype("float32")
    np.testing.assert_array_equal(g_feats, np.repeat(keep[..., None], 3, axis=-1))


def test_flat_map_erases_nothing():
    feats = rand((1, 3, 3, 2), 8)
    maps = np.ones((1, 3, 3, 2), "float32")
    out = ComplementaryErase(delta=0.6)(feats, maps, np.array([1]), training=True)
    np.testing.assert_array_equal(out, feats)


def test_keras_layer_contract(tmp_path):
    feats, maps = rand((2, 4, 4, 3), 9), rand((2, 2, 2, 5), 10)
    out = run_layer_test(
        ComplementaryErase,
        {"delta": 0.7, "erase_at_inference": True, "interpolation": "nearest"},
        [(2, 4, 4, 3), (2, 2, 2, 5)],
        input_data=[feats, maps],
        tmp_path=tmp_path,
    )
    # Something was erased (the contract holds on a non-trivial output).
    assert np.any(np.asarray(out) == 0) and np.any(np.asarray(out) != 0)


def test_invalid_delta():
    with pytest.raises(ValueError, match="delta"):
        ComplementaryErase(delta=1.5)
