"""`cutmix_batch` (CutMix; Yun et al., ICCV 2019, Sec. 3.1 Eq. 1-2) against numpy.

Expected values follow the released code (clovaai/wsolevaluation
wsol/method/cutmix.py `rand_bbox`, main.py `_wsol_training`) worked out in
numpy from the drawn lambda and centre: cut = int(size sqrt(1 - lam)), box
[c - cut // 2, c + cut // 2) clipped, label weight 1 - box area / (H W)."""

import numpy as np
import pytest
import tensorflow as tf

from wsol_keras.data.cutmix import cut_box, cutmix_batch, mixed_one_hot


def _numpy_box(h, w, lam, cr, cc):
    cut_h, cut_w = int(h * np.sqrt(1 - lam)), int(w * np.sqrt(1 - lam))
    r1, r2 = np.clip(cr - cut_h // 2, 0, h), np.clip(cr + cut_h // 2, 0, h)
    c1, c2 = np.clip(cc - cut_w // 2, 0, w), np.clip(cc + cut_w // 2, 0, w)
    return r1, r2, c1, c2


@pytest.mark.parametrize(
    "h,w,lam,cr,cc", [(10, 8, 0.3, 5, 4), (10, 8, 0.3, 0, 7), (9, 9, 0.9, 8, 1), (6, 6, 0.0, 3, 3)]
)
def test_box_is_the_released_rand_bbox_clipped(h, w, lam, cr, cc):
    got = [int(v) for v in cut_box(tf.constant(h), tf.constant(w), tf.constant(lam), cr, cc)]
    assert got == [int(v) for v in _numpy_box(h, w, lam, cr, cc)]


def _batch(b=6, h=12, w=10):
    # Each image constant at its index: the pasted region shows its source.
    images = np.broadcast_to(np.arange(b, dtype="float32")[:, None, None, None], (b, h, w, 3))
    return tf.constant(images), tf.constant(np.arange(b) % 4, tf.int32)


@pytest.mark.parametrize("batch_index", range(6))
def test_label_weight_is_the_exact_area_left_after_clipping(batch_index):
    images, labels = _batch()
    mixed, la, lb, lam = (t.numpy() for t in cutmix_batch(images, labels, (3, batch_index)))
    b, h, w, _ = mixed.shape
    changed = mixed[..., 0] != images.numpy()[..., 0]
    # One box for the batch: the set of pasted pixels is the same rectangle for
    # every image whose partner differs.
    src = mixed[..., 0].astype(int)
    perm_rows = [np.unique(src[i][changed[i]]) for i in range(b)]
    box = changed.any(axis=0)
    rows, cols = np.where(box)
    area = 0 if rows.size == 0 else (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
    assert area == box.sum()  # a rectangle
    np.testing.assert_allclose(lam, 1 - area / (h * w), rtol=1e-6)
    assert np.all(lam == lam[0])
    np.testing.assert_array_equal(la, labels.numpy())
    for i in range(b):
        if perm_rows[i].size:  # the partner's label is label_b
            assert lb[i] == labels.numpy()[perm_rows[i][0]]


def test_weights_follow_beta_one_uniform_on_average():
    images, labels = _batch(4, 32, 32)
    lams = [float(cutmix_batch(images, labels, (0, i))[3][0]) for i in range(300)]
    # lam ~ U(0, 1) before clipping; clipping only shrinks the box (raises lam).
    assert 0.45 < np.mean(lams) < 0.7
    assert min(lams) < 0.2 and max(lams) > 0.9


def test_probability_zero_leaves_the_batch():
    images, labels = _batch()
    mixed, la, lb, lam = cutmix_batch(images, labels, (1, 2), prob=0.0)
    np.testing.assert_array_equal(mixed.numpy(), images.numpy())
    np.testing.assert_array_equal(lb.numpy(), labels.numpy())
    assert np.all(lam.numpy() == 1.0)


def test_same_seed_same_batch_other_index_other_box():
    images, labels = _batch()
    a = cutmix_batch(images, labels, (1, 5))
    b = cutmix_batch(images, labels, (1, 5))
    c = cutmix_batch(images, labels, (1, 6))
    np.testing.assert_array_equal(a[0].numpy(), b[0].numpy())
    assert not np.array_equal(a[0].numpy(), c[0].numpy())


def test_soft_targets_and_two_label_ce_agree():
    from wsol_keras.models.cutmix import mixed_cross_entropy

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 5)).astype("float32")
    la, lb = np.array([0, 2, 4]), np.array([1, 2, 0])
    lam = np.array([0.3, 0.3, 0.3], "float32")
    soft = mixed_one_hot(la, lb, lam, 5).numpy()
    np.testing.assert_allclose(soft[0], [0.3, 0.7, 0, 0, 0], rtol=1e-6)
    np.testing.assert_allclose(soft[1], [0, 0, 1, 0, 0], rtol=1e-6)
    logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    expected = np.mean(-(soft * logp).sum(1))
    got = float(mixed_cross_entropy(la, lb, lam, logits))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
