"""Tests of SoftProposal against an independent numpy version of SPN Sec. 3.1."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from layer_test_util import run_layer_test
from wsol_keras.layers.soft_proposal import (
    GlobalSumPooling2D,
    SoftProposal,
    soft_proposal_graph,
)


def np_graph(u, eps):
    """D of Sec. 3.1 with explicit loops: D'[a,b] = |u_a-u_b| L(a,b), columns -> 1."""
    h, w, _ = u.shape
    n = h * w
    d = np.zeros((n, n))
    for a in range(n):
        i, j = divmod(a, w)
        for b in range(n):
            p, q = divmod(b, w)
            feat = np.sqrt(np.sum((u[i, j].astype(np.float64) - u[p, q]) ** 2))
            d[a, b] = feat * np.exp(-((i - p) ** 2 + (j - q) ** 2) / (2 * eps**2))
    return d / d.sum(axis=0, keepdims=True)


def np_proposal(u, eps, max_iter=20, tol=1e-4, walk="fixed"):
    """Power iteration M <- D M from 1/N (Eq. 1).

    walk "tolerance": the released code, stop when |DM - M| < tol; "fixed":
    exactly max_iter updates; "squaring": D^(2^ceil(log2 max_iter)) by numpy's
    matrix power applied to 1/N.
    """
    h, w, _ = u.shape
    d = np_graph(u, eps)
    m = np.full(h * w, 1.0 / (h * w))
    if walk == "squaring":
        m = np.linalg.matrix_power(d, 2 ** int(np.ceil(np.log2(max_iter)))) @ m
        return (m / m.sum()).reshape(h, w)
    for _ in range(max_iter):
        new = d @ m
        if walk == "tolerance" and np.linalg.norm(new - m) < tol:
            break
        m = new / new.sum()
    return m.reshape(h, w)


WALKS = ("fixed", "squaring", "tolerance")


def random_maps(shape, seed=0):
    return np.random.RandomState(seed).rand(*shape).astype("float32")


@pytest.mark.parametrize("walk", WALKS)
@pytest.mark.parametrize("eps", [None, 0.7, 5.0])
def test_proposal_matches_numpy_power_iteration(eps, walk):
    u = random_maps((3, 4, 4, 3))
    layer = SoftProposal(epsilon=eps, walk=walk, return_proposal=True)
    v, m = layer(u)
    for b in range(u.shape[0]):
        expected = np_proposal(u[b], eps if eps else 0.15 * 4, walk=walk)
        np.testing.assert_allclose(m[b], expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(v, u * np.asarray(m)[..., None], rtol=1e-6)


def test_graph_is_column_stochastic():
    u = random_maps((2, 3, 5, 6), seed=1)
    d = np.asarray(soft_proposal_graph(u, 0.75))
    assert d.shape == (2, 15, 15)
    assert np.all(d >= 0)
    np.testing.assert_allclose(d.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(d[0], np_graph(u[0], 0.75), rtol=1e-4, atol=1e-6)


def test_proposal_sums_to_one_and_is_a_fixed_point():
    u = random_maps((2, 5, 5, 4), seed=2)
    layer = SoftProposal(max_iter=500, tol=1e-7, return_proposal=True)
    _, m = layer(u)
    m = np.asarray(m)
    np.testing.assert_allclose(m.sum(axis=(1, 2)), 1.0, atol=1e-5)
    for b in range(2):
        d = np_graph(u[b], 0.15 * 5)
        vec = m[b].reshape(-1)
        np.testing.assert_allclose(d @ vec, vec, atol=1e-6)


@pytest.mark.parametrize("hw", [(3, 5), (6, 2), (1, 4)])
def test_non_square_maps(hw):
    h, w = hw
    u = random_maps((2, h, w, 3), seed=3)
    _, m = SoftProposal(return_proposal=True)(u)
    assert m.shape == (2, h, w)
    for b in range(2):
        # Default eps uses the longer side.
        expected = np_proposal(u[b], 0.15 * max(h, w))
        np.testing.assert_allclose(m[b], expected, rtol=1e-4, atol=1e-6)


def test_unknown_spatial_size_in_functional_model():
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, SoftProposal()(inputs))
    u = random_maps((1, 4, 3, 3), seed=4)
    expected = np_proposal(u[0], 0.15 * 4)
    np.testing.assert_allclose(model(u)[0], u[0] * expected[..., None], rtol=1e-4)


def test_constant_features_give_uniform_proposal():
    u = np.zeros((1, 3, 3, 2), "float32")
    _, m = SoftProposal(return_proposal=True)(u)
    np.testing.assert_allclose(m, np.full((1, 3, 3), 1 / 9), rtol=1e-6)


@pytest.mark.parametrize("walk", WALKS)
def test_walks_agree_with_released_stopping_rule(walk):
    """Every walk lands within a few tol of the released code's M (L2 per image),
    and the fixed-count walks, which run past the stop, nearer D's fixed point."""
    u = random_maps((2, 14, 14, 16), seed=13)
    _, m = SoftProposal(epsilon=2.1, walk=walk, return_proposal=True)(u)
    m = np.asarray(m, np.float64).reshape(2, -1)
    for b in range(2):
        released = np_proposal(u[b], 2.1, walk="tolerance").reshape(-1)
        fixed_point = np_proposal(u[b], 2.1, max_iter=1000, tol=0.0).reshape(-1)
        assert np.linalg.norm(m[b] - released) <= 5e-4
        if walk != "tolerance":
            assert np.linalg.norm(m[b] - fixed_point) <= np.linalg.norm(
                released - fixed_point
            )


@pytest.mark.parametrize("gram_dtype, layer_dtype", [
    ("bfloat16", "float32"), ("compute", "mixed_bfloat16"), ("float16", "float32"),
])
def test_low_precision_gram_keeps_proposal_close(gram_dtype, layer_dtype):
    # Features with a large common offset: the centring keeps |a|^2 + |b|^2 - 2ab
    # from cancelling catastrophically in 8 mantissa bits.
    u = random_maps((2, 6, 6, 32), seed=14) + 10.0
    layer = SoftProposal(
        epsilon=1.0, gram_dtype=gram_dtype, dtype=layer_dtype, return_proposal=True
    )
    _, m = layer(u)
    assert m.dtype == "float32"
    # Under a mixed policy the layer sees U rounded to the compute dtype first.
    u_seen = np.asarray(keras.ops.cast(keras.ops.cast(u, layer.compute_dtype), "float32"))
    for b in range(2):
        expected = np_proposal(u_seen[b], 1.0).reshape(-1)
        got = np.asarray(m[b], np.float64).reshape(-1)
        assert np.linalg.norm(got - expected) <= 1e-3 * np.linalg.norm(expected)


@pytest.mark.parametrize("walk", WALKS)
def test_tf_function_and_xla_match_eager(walk):
    u = random_maps((2, 4, 6, 5), seed=5)
    layer = SoftProposal(walk=walk, return_proposal=True)
    _, eager = layer(u)
    _, xla = tf.function(layer, jit_compile=True)(u)
    np.testing.assert_allclose(xla, eager, rtol=1e-5, atol=1e-7)


def test_mixed_precision_keeps_proposal_in_float32():
    u = random_maps((2, 4, 4, 3), seed=6)
    layer = SoftProposal(return_proposal=True, dtype="mixed_float16")
    v, m = layer(u)
    assert v.dtype == "float16" and m.dtype == "float32"
    for b in range(2):
        expected = np_proposal(u[b].astype(np.float16).astype(np.float32), 0.6)
        np.testing.assert_allclose(m[b], expected, rtol=1e-3, atol=1e-6)


def test_gradient_stops_at_proposal_by_default():
    u = tf.constant(random_maps((2, 3, 4, 3), seed=7))
    weights = tf.constant(random_maps((2, 3, 4, 3), seed=8))
    layer = SoftProposal(return_proposal=True)
    with tf.GradientTape() as tape:
        tape.watch(u)
        v, m = layer(u)
        loss = tf.reduce_sum(v * weights)
    grad = tape.gradient(loss, u).numpy()
    # Released backward: dL/dU = dL/dV * M, with M from numpy.
    m_np = np.stack([np_proposal(u.numpy()[b], 0.6) for b in range(2)])
    np.testing.assert_allclose(grad, weights.numpy() * m_np[..., None], rtol=1e-4)


def test_gradient_through_proposal_matches_finite_differences():
    u0 = random_maps((1, 2, 3, 2), seed=9).astype(np.float64)
    weights = random_maps((1, 2, 3, 2), seed=10)
    # tol=0 and a fixed number of updates keep the map smooth in U.
    layer = SoftProposal(max_iter=6, tol=0.0, stop_gradient_proposal=False)

    def f(u):
        return tf.reduce_sum(layer(tf.cast(u, tf.float32)) * weights)

    u = tf.constant(u0)
    with tf.GradientTape() as tape:
        tape.watch(u)
        loss = f(u)
    grad = tape.gradient(loss, u).numpy()
    numeric = np.zeros_like(u0)
    h = 1e-3
    for idx in np.ndindex(u0.shape):
        up, down = u0.copy(), u0.copy()
        up[idx] += h
        down[idx] -= h
        numeric[idx] = (f(up).numpy() - f(down).numpy()) / (2 * h)
    np.testing.assert_allclose(grad, numeric, rtol=2e-2, atol=2e-4)
    # And it differs from the stop-gradient version (the graph does matter).
    stopped = SoftProposal(max_iter=6, tol=0.0)
    with tf.GradientTape() as tape:
        tape.watch(u)
        loss2 = tf.reduce_sum(stopped(tf.cast(u, tf.float32)) * weights)
    assert not np.allclose(tape.gradient(loss2, u).numpy(), grad, atol=1e-5)


@pytest.mark.parametrize("walk", ["fixed", "squaring", "tolerance"])
@pytest.mark.parametrize("return_proposal", [False, True])
def test_soft_proposal_keras_layer_contract(tmp_path, return_proposal, walk):
    run_layer_test(
        SoftProposal,
        {"epsilon": 1.3, "max_iter": 7, "tol": 1e-5, "return_proposal": return_proposal,
         "walk": walk},
        (2, 5, 4, 3),
        input_data=random_maps((2, 5, 4, 3), seed=11),
        tmp_path=tmp_path,
    )


def test_get_config_round_trip():
    layer = SoftProposal(
        epsilon=1.3,
        max_iter=7,
        tol=1e-5,
        return_proposal=True,
        walk="squaring",
        gram_dtype="bfloat16",
    )
    clone = SoftProposal.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert (clone.walk, clone.gram_dtype) == ("squaring", "bfloat16")
    u = random_maps((1, 3, 3, 2), seed=11)
    np.testing.assert_allclose(clone(u)[1], layer(u)[1])


def test_global_sum_pooling_keras_layer_contract(tmp_path):
    x = random_maps((2, 5, 4, 3), seed=12)
    out = run_layer_test(GlobalSumPooling2D, {}, (2, 5, 4, 3), input_data=x, tmp_path=tmp_path)
    np.testing.assert_allclose(np.asarray(out), x.sum(axis=(1, 2)), rtol=1e-5)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"epsilon": 0.0},
        {"epsilon_factor": -1},
        {"max_iter": 0},
        {"tol": -1.0},
        {"walk": "converge"},
        {"gram_dtype": "int8"},
    ],
)
def test_invalid_arguments(kwargs):
    with pytest.raises(ValueError, match="SoftProposal"):
        SoftProposal(**kwargs)


def test_area_epsilon_is_the_released_layers_default():
    # yeezhu/SPN.pytorch spnlib SoftProposal.lazyInit: factor = 0.15 * N with
    # N = mW * mH (vgg16_sp uses that default): 0.15 * 3 * 4 = 1.8 here.
    u = random_maps((2, 3, 4, 3), seed=5)
    _, m = SoftProposal(epsilon_basis="area", return_proposal=True)(u)
    for b in range(2):
        np.testing.assert_allclose(m[b], np_proposal(u[b], 1.8), rtol=1e-4, atol=1e-6)
    layer = SoftProposal(epsilon_basis="area")
    assert SoftProposal.from_config(layer.get_config()).epsilon_basis == "area"
    with pytest.raises(ValueError, match="epsilon_basis"):
        SoftProposal(epsilon_basis="diag")
