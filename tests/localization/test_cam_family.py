"""The CAM family on a layer, against each paper's formula in numpy.

Activations come from a sub-model of a tiny classifier; the gradients of the
target logit are worked out by hand in numpy from the head's weights (no
tape): the head after the layer is ``conv1x1 + ReLU -> GAP -> dense``, so
``d l_c / d A_ij = W1 @ (relu'(z_ij) * W2[:, c]) / (h * w)`` with
``z = A @ W1 + b1``. Each reference then follows its paper:

* Grad-CAM++ (Chattopadhay et al., WACV 2018, Eq. 9-10 with the derivatives
  of ``Y = exp(S_c)``: ``exp(S) g``, ``exp(S) g^2``, ``exp(S) g^3``; the closed
  form of Eq. 19 is what the package computes);
* XGrad-CAM (Fu et al., BMVC 2020): ``w_k = sum_ij A_ij g_ij / sum_ij A_ij``;
* LayerCAM (Jiang et al., TIP 2021): ``relu(sum_k relu(g) * A)``;
* HiResCAM (Draelos & Carin 2020): ``relu(sum_k g * A)``;
* Eigen-CAM (Muhammad & Yeasin, IJCNN 2020): projection of the centered
  activations on the first right singular vector (``numpy.linalg.svd``, as
  pytorch-grad-cam's ``get_2d_projection``), sign towards the mean activation;
* Score-CAM (Wang et al., CVPRW 2020): softmax probability of the target on
  the image masked by each min-max normalized, bilinearly upsampled channel
  (``cv2.resize``), over the top-N channels by mean activation.
"""

import cv2
import keras
import numpy as np
import pytest
import tensorflow as tf

from wsol_keras.configs import base as config_base
from wsol_keras.evaluation import protocol
from wsol_keras.localization import maps as localization
from wsol_keras.localization.dual_gradient import DualGradient
from wsol_keras.training import config_checks

S = 16
LABELS = np.array([0, 2, 1], np.int32)


@pytest.fixture(scope="module")
def tiny():
    keras.utils.set_random_seed(7)
    inp = keras.Input((S, S, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="c1")(inp)  # 14 x 14
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="feat")(x)
    x = keras.layers.Conv2D(5, 1, activation="relu", name="head")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(3, name="logits")(x)
    model = keras.Model(inp, out)
    images = np.random.default_rng(1).uniform(0, 1, (3, S, S, 3)).astype("float32")
    acts = keras.Model(inp, model.get_layer("feat").output)(images).numpy().astype(np.float64)
    w1, b1 = (v.numpy().astype(np.float64) for v in model.get_layer("head").weights)
    w2, b2 = (v.numpy().astype(np.float64) for v in model.get_layer("logits").weights)
    w1 = w1[0, 0]  # [K, 5]
    z = acts @ w1 + b1  # [B, h, w, 5]
    h, w = acts.shape[1:3]
    grads = np.einsum("kj,bxyj->bxyk", w1, (z > 0) * w2[:, LABELS].T[:, None, None, :]) / (h * w)
    logits = np.maximum(z, 0).mean(axis=(1, 2)) @ w2 + b2
    return model, images, acts, grads, logits


def _got(model, images, method, **kwargs):
    return DualGradient(model, "feat", method=method, **kwargs)(images, labels=LABELS)[
        "feat"
    ].numpy()


def _norm(m):
    m = np.asarray(m, np.float64)
    lo = m.min(axis=(1, 2), keepdims=True)
    hi = m.max(axis=(1, 2), keepdims=True)
    return (m - lo) / np.maximum(hi - lo, 1e-12)


def _close(got, want, rtol=1e-4):
    assert np.all(want.max(axis=(1, 2)) > 0), "degenerate reference map"
    scale = np.abs(want).max()
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale)


def test_the_hand_gradient_is_the_tape_gradient(tiny):
    # The reference gradient itself: pcs (DGL Eq. 5) is sum_k g * A.
    model, images, acts, grads, _ = tiny
    _close(_got(model, images, "pcs"), (grads * acts).sum(-1))


def test_gradcam_plus_plus_is_eq_10_with_exponential_output(tiny):
    model, images, acts, grads, logits = tiny
    want = np.zeros(acts.shape[:3])
    for b in range(len(images)):
        e = np.exp(logits[b, LABELS[b]])
        d1, d2, d3 = e * grads[b], e * grads[b] ** 2, e * grads[b] ** 3
        for k in range(acts.shape[-1]):
            a = acts[b, ..., k]
            den = 2 * d2[..., k] + a.sum() * d3[..., k]
            alpha = np.divide(d2[..., k], den, out=np.zeros_like(den), where=den != 0)
            want[b] += (alpha * np.maximum(d1[..., k], 0)).sum() * a
    want = np.maximum(want, 0)
    got = _got(model, images, "gradcam++")
    # exp(S_c) scales each image's map: equal after min-max normalization.
    np.testing.assert_allclose(_norm(got), _norm(want), atol=1e-4)
    assert not np.allclose(_norm(got), _norm(_got(model, images, "gradcam")), atol=1e-2)


def test_xgradcam_weights(tiny):
    model, images, acts, grads, _ = tiny
    want = np.zeros(acts.shape[:3])
    for b in range(len(images)):
        for k in range(acts.shape[-1]):
            a = acts[b, ..., k]
            if a.sum() != 0:
                want[b] += (a / a.sum() * grads[b, ..., k]).sum() * a
    _close(_got(model, images, "xgradcam"), np.maximum(want, 0))


def test_layercam_and_hirescam(tiny):
    model, images, acts, grads, _ = tiny
    _close(_got(model, images, "layercam"), np.maximum((np.maximum(grads, 0) * acts).sum(-1), 0))
    _close(_got(model, images, "hirescam"), np.maximum((grads * acts).sum(-1), 0))


def test_eigencam_is_the_first_principal_component(tiny):
    model, images, acts, _, _ = tiny
    b, h, w, k = acts.shape
    want = []
    for a in acts:
        x = a.reshape(-1, k)
        x = x - x.mean(axis=0)
        _, sv, vt = np.linalg.svd(x, full_matrices=False)
        assert sv[1] < 0.95 * sv[0]  # a well-defined component
        p = x @ vt[0]
        if (p * a.reshape(-1, k).mean(-1)).sum() < 0:
            p = -p
        want.append(np.maximum(p, 0).reshape(h, w))
    got = _got(model, images, "eigencam")
    _close(got, np.stack(want), rtol=1e-3)
    # class-agnostic: the labels do not enter
    other = DualGradient(model, "feat", method="eigencam")(images, labels=LABELS[::-1])["feat"]
    np.testing.assert_allclose(other.numpy(), got, atol=1e-6)


def test_eigencam_uses_the_gram_matrix_when_locations_are_fewer_than_channels():
    rng = np.random.default_rng(3)
    acts = np.maximum(rng.normal(size=(2, 3, 2, 9)), 0).astype(np.float32)  # HW=6 < K=9
    from wsol_keras.localization import cam_family

    got = cam_family.eigencam(tf.constant(acts)).numpy()
    for a, g in zip(acts.astype(np.float64), got):
        x = a.reshape(-1, 9)
        x = x - x.mean(0)
        p = x @ np.linalg.svd(x)[2][0]
        if (p * a.reshape(-1, 9).mean(-1)).sum() < 0:
            p = -p
        np.testing.assert_allclose(g, np.maximum(p, 0).reshape(3, 2), atol=1e-4)


@pytest.mark.parametrize("cap", [2, 6, 50])
def test_scorecam_masked_passes(tiny, cap):
    model, images, acts, _, _ = tiny
    b, h, w, k = acts.shape
    n = min(cap, k)
    want = np.zeros((b, h, w))
    for i in range(b):
        top = np.argsort(-acts[i].mean(axis=(0, 1)), kind="stable")[:n]
        for c in top:
            up = cv2.resize(acts[i, ..., c].astype(np.float32), (S, S), interpolation=cv2.INTER_LINEAR)
            if up.max() == up.min():
                continue
            mask = (up - up.min()) / (up.max() - up.min())
            logit = model(images[i : i + 1] * mask[None, ..., None]).numpy()[0].astype(np.float64)
            prob = np.exp(logit - logit.max()) / np.exp(logit - logit.max()).sum()
            want[i] += prob[LABELS[i]] * acts[i, ..., c]
    _close(_got(model, images, "scorecam", scorecam_channels=cap), np.maximum(want, 0), rtol=1e-3)


def test_localizer_takes_every_family_method_and_rejects_unknown_names(tiny):
    model, images, *_ = tiny
    for method in ("gradcam++", "xgradcam", "layercam", "hirescam", "eigencam", "scorecam"):
        assert method in localization.MAP_METHODS
        got = localization.Localizer(model, S, map_method=method, dgl_layer="feat")(images)
        assert got["maps"].shape == (3, S, S)
        np.testing.assert_allclose(got["maps"].numpy().max(axis=(1, 2)), 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="feat.*needs|dgl_layer"):
        localization.Localizer(model, S, map_method="eigencam")
    with pytest.raises(ValueError, match="scorecam_channels=0"):
        DualGradient(model, "feat", method="scorecam", scorecam_channels=0)


@pytest.mark.parametrize("check", [config_checks.check_config, protocol.check_config])
def test_config_checks_name_the_map_method(check):
    config = config_base.base_config()
    for method in localization.MAP_METHODS:
        config.eval.map_method = method
        check(config)
    config.eval.map_method = "gradcam+"
    with pytest.raises(ValueError, match=r"map_method='gradcam\+'.*scorecam"):
        check(config)


def test_scorecam_channels_range_is_checked():
    config = config_base.base_config()
    config.eval.scorecam_channels = 0
    with pytest.raises(ValueError, match="scorecam_channels=0"):
        config_checks.check_config(config)
