"""Tests for wsol_keras.data.augment (crop/flip keep boxes and masks consistent)."""

import numpy as np
import tensorflow as tf

from wsol_keras import data as wdata
from wsol_keras.data import augment

S = 16


def _element(boxes, mask=None, image=None):
    b = -np.ones((wdata.MAX_BOXES, 4), np.float32)
    b[: len(boxes)] = boxes
    if image is None:
        image = np.arange(S * S * 3, dtype=np.int64).reshape(S, S, 3) % 251
    return {
        "image": tf.constant(np.asarray(image, np.uint8)),
        "label": tf.constant(3, tf.int32),
        "hierarchy": tf.constant([1, 0], tf.int32),
        "boxes": tf.constant(b),
        "num_boxes": tf.constant(len(boxes), tf.int32),
        "mask": tf.constant(np.zeros((S, S), np.uint8) if mask is None else mask),
        "has_mask": tf.constant(mask is not None),
        "image_id": tf.constant("x"),
    }


def _np(e):
    return {k: v.numpy() for k, v in e.items()}


def test_hflip_by_hand():
    mask = np.zeros((S, S), np.uint8)
    mask[3:10, 2:6] = 1
    e = _np(augment.hflip(_element([[2, 3, 5, 9]], mask)))
    # inclusive pixel columns 2..5 -> 15-5 .. 15-2 = 10..13
    np.testing.assert_array_equal(e["boxes"][0], [10, 3, 13, 9])
    assert np.all(e["boxes"][1:] == -1)
    expected = np.zeros((S, S), np.uint8)
    expected[3:10, 10:14] = 1
    np.testing.assert_array_equal(e["mask"], expected)
    orig = _np(_element([[2, 3, 5, 9]]))["image"]
    np.testing.assert_array_equal(e["image"], orig[:, ::-1])


def test_center_crop_by_hand_drops_and_compacts_boxes():
    s = 8
    b = -np.ones((wdata.MAX_BOXES, 4), np.float32)
    b[:3] = [[0, 0, 1, 1], [0, 0, 7, 7], [1, 1, 2, 2]]
    el = {
        "image": tf.zeros([s, s, 3], tf.uint8),
        "boxes": tf.constant(b),
        "num_boxes": tf.constant(3),
        "mask": tf.zeros([s, s], tf.uint8),
    }
    out = _np(augment.eval_preprocess(el, center_crop_scale=2.0))
    # big = 16, offset 4: [0,0,1,1] -> [-4,-4,-2,-2] leaves the crop; [0,0,7,7] ->
    # [-4,-4,10,10] -> clip [0,0,7,7]; [1,1,2,2] -> [-2,-2,0,0] -> [0,0,0,0].
    assert out["num_boxes"] == 2
    np.testing.assert_array_equal(out["boxes"][:2], [[0, 0, 7, 7], [0, 0, 0, 0]])
    assert np.all(out["boxes"][2:] == -1)


def test_eval_preprocess_default_is_identity():
    e = _element([[2, 3, 5, 9]])
    out = augment.eval_preprocess(e)
    for k in e:
        np.testing.assert_array_equal(out[k].numpy(), e[k].numpy())


def test_random_crop_keeps_box_on_mask_extent():
    mask = np.zeros((S, S), np.uint8)
    mask[4:12, 3:9] = 1
    e = _element([[3, 4, 8, 11]], mask)
    for i in range(8):
        out = _np(augment.train_augment(e, tf.constant([i, 7]), scale=1.5))
        assert out["image"].shape == (S, S, 3) and out["image"].dtype == np.uint8
        assert out["mask"].shape == (S, S) and out["mask"].dtype == np.uint8
        ys, xs = np.nonzero(out["mask"])
        extent = np.array([xs.min(), ys.min(), xs.max(), ys.max()], np.float32)
        assert out["num_boxes"] == 1
        # Resizing by 1.5 moves edges by under 1.5 px against the nearest-neighbour mask.
        assert np.all(np.abs(out["boxes"][0] - extent) <= 1.5), (
            out["boxes"][0],
            extent,
        )
        for k in ("label", "hierarchy", "has_mask", "image_id"):
            np.testing.assert_array_equal(out[k], e[k].numpy())


def test_flip_only_is_original_or_mirror_and_both_happen():
    e = _element([[2, 3, 5, 9]])
    orig = _np(e)["image"]
    seen = set()
    for i in range(16):
        out = _np(augment.train_augment(e, tf.constant([i, 0]), scale=1.0))
        if np.array_equal(out["image"], orig):
            seen.add("same")
            np.testing.assert_array_equal(out["boxes"][0], [2, 3, 5, 9])
        else:
            np.testing.assert_array_equal(out["image"], orig[:, ::-1])
            np.testing.assert_array_equal(out["boxes"][0], [10, 3, 13, 9])
            seen.add("flip")
    assert seen == {"same", "flip"}


def test_same_seed_same_output():
    e = _element([[2, 3, 5, 9]])
    a = _np(augment.train_augment(e, tf.constant([5, 6]), brightness=20, contrast=0.2))
    b = _np(augment.train_augment(e, tf.constant([5, 6]), brightness=20, contrast=0.2))
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_augment_dataset_in_tf_data_reproducible_and_rerandomized():
    c = wdata.default_data_config()
    c.image_size = 32
    c.synthetic.num_train = 8
    src = wdata.get_source(c)
    ds1 = augment.augment_dataset(src.dataset("train"), seed=3)
    ds2 = augment.augment_dataset(src.dataset("train"), seed=3)
    spec = src.dataset("train").element_spec
    assert {k: (v.shape, v.dtype) for k, v in ds1.element_spec.items()} == {
        k: (v.shape, v.dtype) for k, v in spec.items()
    }
    ep1 = [e["image"] for e in ds1.as_numpy_iterator()]
    ep1b = [e["image"] for e in ds2.as_numpy_iterator()]
    ep2 = [e["image"] for e in ds1.as_numpy_iterator()]
    assert all(np.array_equal(x, y) for x, y in zip(ep1, ep1b))
    assert not all(np.array_equal(x, y) for x, y in zip(ep1, ep2))
