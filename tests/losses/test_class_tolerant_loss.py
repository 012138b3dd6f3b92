"""Tests for ClassTolerantLoss (SLT-Net Eq. 8) and top-K ACAM (Eq. 9)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from wsol_keras.losses.class_tolerant import (
    ClassTolerantLoss,
    resolve_top_k,
    topk_average_cams,
)


def np_ce(logits, labels):
    m = logits.max(axis=-1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(logits - m).sum(axis=-1))
    return lse - logits[np.arange(len(labels)), labels]


def np_smt(logits, labels, k, alpha):
    """Eq. 8 written directly: alpha*CE if x_gt is among the K largest."""
    out = []
    for row, y, ce in zip(logits, labels, np_ce(logits, labels)):
        # position of the GT in a descending sort where ties favour the GT
        strictly_above = int((row > row[y]).sum())
        out.append(alpha * ce if strictly_above < k else ce)
    return np.array(out)


LOGITS = np.array(
    [
        [2.0, 1.0, 0.5, -1.0, 0.0],  # gt 1: rank 2
        [0.1, 0.2, 3.0, 0.3, 0.4],  # gt 0: rank 5
        [1.0, 1.5, -2.0, 4.0, 0.0],  # gt 3: rank 1
        [0.0, 0.3, 0.2, 0.1, 0.5],  # gt 2: rank 3
    ],
    np.float32,
)
LABELS = np.array([1, 0, 3, 2], np.int32)


@pytest.mark.parametrize("k,alpha", [(1, 0.4), (2, 0.4), (3, 0.2), (4, 0.0)])
def test_matches_numpy_sparse_and_onehot(k, alpha):
    expected = np_smt(LOGITS, LABELS, k, alpha)
    loss = ClassTolerantLoss(k=k, alpha=alpha, reduction=None)
    sparse = np.asarray(loss(LABELS, LOGITS))
    onehot = np.asarray(loss(np.eye(5, dtype=np.float32)[LABELS], LOGITS))
    column = np.asarray(loss(LABELS[:, None], LOGITS))
    np.testing.assert_allclose(sparse, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(onehot, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(column, expected, rtol=1e-5, atol=1e-6)


def test_worked_example_by_hand():
    # logits [0, ln 3]: p = [1/4, 3/4]. GT 0 is 2nd -> outside top-1 -> CE=ln 4.
    # GT 1 is 1st -> inside top-1 -> alpha * ln(4/3).
    logits = np.array([[0.0, np.log(3.0)], [0.0, np.log(3.0)]], np.float32)
    loss = ClassTolerantLoss(k=1, alpha=0.5, reduction=None)
    got = np.asarray(loss(np.array([0, 1]), logits))
    np.testing.assert_allclose(got, [np.log(4.0), 0.5 * np.log(4.0 / 3.0)], rtol=1e-5)


def test_k1_alpha1_is_cross_entropy():
    loss = ClassTolerantLoss(k=1, alpha=1.0)
    got = float(loss(LABELS, LOGITS))
    np.testing.assert_allclose(got, np_ce(LOGITS, LABELS).mean(), rtol=1e-5)


def test_ties_at_kth_place_count_as_inside():
    logits = np.array([[3.0, 2.0, 2.0, 1.0]] * 2, np.float32)
    ce = np_ce(logits, np.array([2, 1]))
    # GT 2 is tied with class 1 for the 2nd/3rd place: only one class is
    # strictly above it, so it is in the top-2 (same for GT 1).
    got = np.asarray(
        ClassTolerantLoss(k=2, alpha=0.1, reduction=None)(np.array([2, 1]), logits)
    )
    np.testing.assert_allclose(got, 0.1 * ce, rtol=1e-5)
    # Same convention as tf.math.in_top_k.
    assert bool(tf.reduce_all(tf.math.in_top_k(np.array([2, 1]), logits, 2)))
    # Class 3 has three classes strictly above it: outside the top-3.
    got3 = np.asarray(
        ClassTolerantLoss(k=3, alpha=0.1, reduction=None)(np.array([3]), logits[:1])
    )
    np.testing.assert_allclose(got3, np_ce(logits[:1], np.array([3])), rtol=1e-5)


def test_reductions_and_sample_weight():
    k, alpha = 2, 0.4
    per = np_smt(LOGITS, LABELS, k, alpha)
    w = np.array([1.0, 0.0, 2.0, 0.5], np.float32)
    mean = float(ClassTolerantLoss(k=k, alpha=alpha)(LABELS, LOGITS, sample_weight=w))
    np.testing.assert_allclose(mean, (per * w).sum() / 4, rtol=1e-5)
    total = float(
        ClassTolerantLoss(k=k, alpha=alpha, reduction="sum")(
            LABELS, LOGITS, sample_weight=w
        )
    )
    np.testing.assert_allclose(total, (per * w).sum(), rtol=1e-5)
    wmean = float(
        ClassTolerantLoss(k=k, alpha=alpha, reduction="mean_with_sample_weight")(
            LABELS, LOGITS, sample_weight=w
        )
    )
    np.testing.assert_allclose(wmean, (per * w).sum() / w.sum(), rtol=1e-5)


def test_fraction_k_resolves_against_num_classes():
    assert resolve_top_k(0.15, 200) == 30
    assert resolve_top_k(0.1, 1000) == 100
    assert resolve_top_k(30, 200) == 30
    assert resolve_top_k(30.0, 200) == 30
    logits = np.random.default_rng(0).normal(size=(6, 20)).astype(np.float32)
    labels = np.arange(6) * 3
    got = np.asarray(
        ClassTolerantLoss(k=0.15, alpha=0.3, reduction=None)(labels, logits)
    )
    np.testing.assert_allclose(got, np_smt(logits, labels, 3, 0.3), rtol=1e-5)


@pytest.mark.parametrize("k,num_classes", [(200, 200), (0.001, 10), (250, 200)])
def test_invalid_k_is_a_clear_error(k, num_classes):
    logits = np.zeros((2, num_classes), np.float32)
    with pytest.raises(ValueError, match=r"1 <= K < number of classes"):
        ClassTolerantLoss(k=k)(np.array([0, 1]), logits)


@pytest.mark.parametrize("k", [0, -3, 2.5, "30", True])
def test_invalid_constructor_args(k):
    with pytest.raises(ValueError, match="k"):
        ClassTolerantLoss(k=k)


def test_negative_alpha_rejected():
    with pytest.raises(ValueError, match="alpha"):
        ClassTolerantLoss(k=2, alpha=-0.1)


def test_float16_logits_computed_in_float32():
    logits16 = (LOGITS * 10).astype(
        np.float16
    )  # large logits: fp16 softmax would overflow
    got = ClassTolerantLoss(k=2, alpha=0.4, reduction=None)(LABELS, logits16)
    assert got.dtype == "float32"
    expected = np_smt(logits16.astype(np.float32), LABELS, 2, 0.4)
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-4)


def test_from_probabilities():
    probs = np.exp(LOGITS) / np.exp(LOGITS).sum(-1, keepdims=True)
    got = np.asarray(
        ClassTolerantLoss(k=2, alpha=0.4, from_logits=False, reduction=None)(
            LABELS, probs
        )
    )
    np.testing.assert_allclose(got, np_smt(LOGITS, LABELS, 2, 0.4), rtol=1e-4)


def test_gradient_is_scaled_cross_entropy_gradient():
    x = tf.constant(LOGITS)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = ClassTolerantLoss(k=2, alpha=0.4, reduction="sum")(LABELS, x)
    grad = tape.gradient(loss, x).numpy()
    p = np.exp(LOGITS) / np.exp(LOGITS).sum(-1, keepdims=True)
    scale = np.where(
        np_smt(LOGITS, LABELS, 2, 0.4) < np_ce(LOGITS, LABELS) - 1e-7, 0.4, 1.0
    )
    expected = scale[:, None] * (p - np.eye(5)[LABELS])
    np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-6)


def test_serialization_roundtrip():
    loss = ClassTolerantLoss(k=0.15, alpha=0.2, reduction="sum", name="smt")
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored, ClassTolerantLoss)
    assert (restored.k, restored.alpha, restored.reduction, restored.name) == (
        0.15,
        0.2,
        "sum",
        "smt",
    )


def test_usable_in_compile_fit():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4)])
    model.compile(optimizer="sgd", loss=ClassTolerantLoss(k=2, alpha=0.5))
    hist = model.fit(
        np.ones((8, 3), np.float32), np.arange(8) % 4, epochs=1, batch_size=4, verbose=0
    )
    assert np.isfinite(hist.history["loss"][0])


def test_topk_average_cams_matches_numpy():
    rng = np.random.default_rng(1)
    cams = rng.normal(size=(2, 3, 4, 5)).astype(np.float32)
    logits = np.array(
        [[0.1, 2.0, -1.0, 1.5, 0.0], [3.0, 0.0, 0.5, 0.2, 2.5]], np.float32
    )
    got = np.asarray(topk_average_cams(cams, logits, 2))
    expected = np.stack(
        [
            (cams[0, ..., 1] + cams[0, ..., 3]) / 2,
            (cams[1, ..., 0] + cams[1, ..., 4]) / 2,
        ]
    )
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    # K=1 selects the top-1 map; a fraction resolves against C.
    np.testing.assert_allclose(
        np.asarray(topk_average_cams(cams, logits, 1))[1], cams[1, ..., 0]
    )
    np.testing.assert_allclose(
        np.asarray(topk_average_cams(cams, logits, 0.4)), expected, rtol=1e-6
    )


def test_topk_average_cams_class_mismatch():
    with pytest.raises(ValueError, match="classes"):
        topk_average_cams(
            np.zeros((1, 2, 2, 4), np.float32), np.zeros((1, 5), np.float32), 2
        )
