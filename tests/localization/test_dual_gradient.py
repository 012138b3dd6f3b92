"""Tests for DualGradient (DGL, Tan et al. ACM MM 2020, Eq. 5, 7, 8)."""

import keras
import cv2
import numpy as np
import pytest
import tensorflow as tf

from wsol_keras.localization.dual_gradient import DualGradient, resolve_layer

H, W, KIN, K1, K2, C = 4, 5, 3, 6, 7, 4


def relu(x):
    return np.maximum(x, 0.0)


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def l2n(x):
    return x / np.sqrt(max((x**2).sum(), 1e-12))


def set_weights(model, seed=0):
    rng = np.random.default_rng(seed)
    for v in model.weights:
        v.assign(rng.normal(scale=0.5, size=v.shape).astype(np.float32))


def gap_model(softmax_top=False):
    """Input -> 1x1 conv "feat" (relu) -> GAP -> dense "fc"."""
    x = keras.Input((H, W, KIN))
    s = keras.layers.Conv2D(K1, 1, activation="relu", name="feat")(x)
    g = keras.layers.GlobalAveragePooling2D()(s)
    out = keras.layers.Dense(
        C, activation="softmax" if softmax_top else None, name="fc"
    )(g)
    model = keras.Model(x, out)
    set_weights(model)
    return model


def np_gap_forward(model, x):
    w1, b1 = [np.asarray(v) for v in model.get_layer("feat").weights]
    w2, b2 = [np.asarray(v) for v in model.get_layer("fc").weights]
    s = relu(x @ w1[0, 0] + b1)  # [B,H,W,K1]
    logits = s.mean(axis=(1, 2)) @ w2 + b2
    return s, logits, w2


IMAGES = np.random.default_rng(5).normal(size=(3, H, W, KIN)).astype(np.float32)


@pytest.mark.parametrize("softmax_top", [False, True])
def test_eq5_on_last_conv_is_cam_over_hw(softmax_top):
    """Sec. 3.3: with GAP, d l_c / d S = w_c / (H*W), so Eq. 5 = CAM_c / (H*W)."""
    model = gap_model(softmax_top)
    s, logits, w2 = np_gap_forward(model, IMAGES)
    top1 = logits.argmax(-1)
    cam = np.einsum("bhwk,kb->bhw", s, w2[:, top1])  # M_c = sum_k w_k^c S_k (Eq. 2)
    got = DualGradient(model, "feat", method="pcs")(IMAGES, return_logits=True)
    np.testing.assert_allclose(
        np.asarray(got["feat"]), cam / (H * W), rtol=1e-4, atol=1e-6
    )
    # Pre-softmax logits are used even when the model outputs probabilities.
    np.testing.assert_allclose(np.asarray(got["logits"]), logits, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(got["target"]), top1)


def np_dgl_gap(s, logits, w2, target, alpha):
    hw = s.shape[1] * s.shape[2]
    out = []
    for b in range(len(s)):
        onehot = np.eye(w2.shape[1])[target[b]]
        g_h = np.broadcast_to(w2[:, target[b]] / hw, s[b].shape)
        g = np.broadcast_to(w2 @ (softmax(logits[b]) - alpha * onehot) / hw, s[b].shape)
        a = l2n(s[b]) - l2n(g)  # Eq. 7
        out.append((g_h * a).sum(-1))  # Eq. 8
    return np.stack(out)


def test_dgl_on_gap_model_matches_hand_derivation():
    model = gap_model()
    s, logits, w2 = np_gap_forward(model, IMAGES)
    expected = np_dgl_gap(s, logits, w2, logits.argmax(-1), 10.0)
    got = np.asarray(DualGradient(model, ["feat"], alpha=10.0)(IMAGES)["feat"])
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


def test_given_labels_select_the_target_class():
    model = gap_model()
    s, logits, w2 = np_gap_forward(model, IMAGES)
    labels = (logits.argmax(-1) + 1) % C  # deliberately not the prediction
    expected = np_dgl_gap(s, logits, w2, labels, 10.0)
    got = DualGradient(model, "feat")(IMAGES, labels=labels, return_logits=True)
    np.testing.assert_allclose(np.asarray(got["feat"]), expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(got["target"]), labels)


def test_alpha_matters_with_fused_gradient():
    """softmax(l) - alpha*onehot: different alpha, different maps (Eq. 7)."""
    model = gap_model()
    s, logits, w2 = np_gap_forward(model, IMAGES)
    top1 = logits.argmax(-1)
    m1 = np.asarray(DualGradient(model, "feat", alpha=1.0)(IMAGES)["feat"])
    m10 = np.asarray(DualGradient(model, "feat", alpha=10.0)(IMAGES)["feat"])
    np.testing.assert_allclose(
        m1, np_dgl_gap(s, logits, w2, top1, 1.0), rtol=1e-4, atol=1e-6
    )
    assert np.abs(m1 - m10).max() > 1e-3 * np.abs(m10).max()
    # With the exact gradient alpha*(softmax - onehot), alpha would cancel
    # after the l2 normalization; the fused one differs from it.
    hw = H * W
    exact = np.stack(
        [
            (
                np.broadcast_to(w2[:, top1[b]] / hw, s[b].shape)
                * (
                    l2n(s[b])
                    - l2n(
                        np.broadcast_to(
                            w2 @ (softmax(logits[b]) - np.eye(C)[top1[b]]) / hw,
                            s[b].shape,
                        )
                    )
                )
            ).sum(-1)
            for b in range(3)
        ]
    )
    assert np.abs(m10 - exact).max() > 1e-3 * np.abs(m10).max()


def test_gradcam_baseline_on_last_conv_is_relu_cam():
    model = gap_model()
    s, logits, w2 = np_gap_forward(model, IMAGES)
    top1 = logits.argmax(-1)
    cam = np.einsum("bhwk,kb->bhw", s, w2[:, top1])
    got = np.asarray(DualGradient(model, "feat", method="gradcam")(IMAGES)["feat"])
    np.testing.assert_allclose(got, relu(cam) / (H * W), rtol=1e-4, atol=1e-6)


def two_conv_model():
    x = keras.Input((H, W, KIN))
    s1 = keras.layers.Conv2D(K1, 1, activation="relu", name="c1")(x)
    s2 = keras.layers.Conv2D(K2, 1, activation="relu", name="c2")(s1)
    out = keras.layers.Dense(C, name="fc")(keras.layers.GlobalAveragePooling2D()(s2))
    return keras.Model(x, out)


def np_two_conv(weights, x, alpha):
    w1, b1, w2, b2, w3, b3 = [np.asarray(v) for v in weights]
    s1 = relu(x @ w1[0, 0] + b1)
    pre2 = s1 @ w2[0, 0] + b2
    s2 = relu(pre2)
    logits = s2.mean(axis=(1, 2)) @ w3 + b3
    c = logits.argmax(-1)
    maps = {"dgl": [], "pcs": []}
    for b in range(len(x)):
        onehot = np.eye(C)[c[b]]

        def grad_s1(cot):  # d (cot . logits) / d S1 through GAP, relu, 1x1 conv
            d_s2 = np.broadcast_to(w3 @ cot / (H * W), s2[b].shape)
            return (d_s2 * (pre2[b] > 0)) @ w2[0, 0].T

        g_h = grad_s1(onehot)
        g = grad_s1(softmax(logits[b]) - alpha * onehot)
        maps["pcs"].append((g_h * s1[b]).sum(-1))
        maps["dgl"].append((g_h * (l2n(s1[b]) - l2n(g))).sum(-1))
    return {k: np.stack(v) for k, v in maps.items()}


def test_inner_layer_pixel_level_gradients():
    model = two_conv_model()
    set_weights(model, 1)
    expected = np_two_conv(model.weights, IMAGES, 10.0)
    dgl = DualGradient(model, ["c1", "c2"])
    got = dgl(IMAGES)
    assert set(got) == {"c1", "c2"}
    assert got["c1"].shape == (3, H, W) and got["c2"].shape == (3, H, W)
    np.testing.assert_allclose(
        np.asarray(got["c1"]), expected["dgl"], rtol=1e-4, atol=1e-6
    )
    np.testing.assert_allclose(
        np.asarray(dgl(IMAGES, method="pcs")["c1"]),
        expected["pcs"],
        rtol=1e-4,
        atol=1e-6,
    )


def test_nested_backbone_addressed_by_path():
    flat = two_conv_model()
    set_weights(flat, 2)
    x = keras.Input((H, W, KIN))
    s1 = keras.layers.Conv2D(K1, 1, activation="relu", name="c1")(x)
    s2 = keras.layers.Conv2D(K2, 1, activation="relu", name="c2")(s1)
    backbone = keras.Model(x, s2, name="backbone")
    inp = keras.Input((H, W, KIN))
    out = keras.layers.Dense(C, name="fc")(
        keras.layers.GlobalAveragePooling2D()(backbone(inp))
    )
    nested = keras.Model(inp, out)
    for a, b in zip(nested.weights, flat.weights):
        a.assign(b)
    expected = np_two_conv(flat.weights, IMAGES, 10.0)["dgl"]
    got = DualGradient(nested, "backbone/c1")(IMAGES)["backbone/c1"]
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-4, atol=1e-6)
    # The layer's original call is restored after use.
    assert "call" not in resolve_layer(nested, "backbone/c1").__dict__


class DictModel(keras.Model):
    """Subclassed model with a `backbone` attribute and dict outputs (like WSOLModel)."""

    def __init__(self, backbone, **kwargs):
        super().__init__(**kwargs)
        self.backbone = backbone
        self.pool = keras.layers.GlobalAveragePooling2D()
        self.fc = keras.layers.Dense(C, name="fc")

    def call(self, images, training=None):
        feats = self.backbone(images, training=training)
        return {"logits": self.fc(self.pool(feats)), "cams": feats}


def test_dict_output_subclassed_model_attribute_path():
    x = keras.Input((H, W, KIN))
    s = keras.layers.Conv2D(K1, 1, activation="relu", name="feat")(x)
    backbone = keras.Model(x, s, name="tiny_backbone")
    model = DictModel(backbone)
    model(IMAGES)
    set_weights(model, 3)
    w1, b1 = [np.asarray(v) for v in backbone.weights]
    w2, b2 = [np.asarray(v) for v in model.fc.weights]
    s_np = relu(IMAGES @ w1[0, 0] + b1)
    logits = s_np.mean(axis=(1, 2)) @ w2 + b2
    expected = np_dgl_gap(s_np, logits, w2, logits.argmax(-1), 10.0)
    # "backbone" is the attribute name; the sub-model's own name works too.
    for path in ("backbone/feat", "tiny_backbone/feat"):
        got = DualGradient(model, path)(IMAGES)[path]
        np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-4, atol=1e-6)


def test_keras_applications_model_with_softmax_top():
    model = keras.applications.MobileNetV2(
        input_shape=(32, 32, 3), alpha=0.35, weights=None, classes=5
    )
    images = (
        np.random.default_rng(0).uniform(-1, 1, size=(2, 32, 32, 3)).astype(np.float32)
    )
    dgl = DualGradient(model, ["out_relu", "block_13_expand_relu"], method="pcs")
    got = dgl(images, return_logits=True)
    assert got["out_relu"].shape == (2, 1, 1) and got["block_13_expand_relu"].shape == (
        2,
        2,
        2,
    )
    # Eq. 5 on the last conv before GAP equals CAM / (H*W) with the
    # "predictions" kernel, computed from the pre-softmax logits.
    feat_model = keras.Model(model.input, model.get_layer("out_relu").output)
    s = np.asarray(feat_model(images))
    kernel = np.asarray(model.get_layer("predictions").kernel)
    logits = s.mean(axis=(1, 2)) @ kernel + np.asarray(
        model.get_layer("predictions").bias
    )
    np.testing.assert_allclose(np.asarray(got["logits"]), logits, rtol=1e-4, atol=1e-5)
    top1 = logits.argmax(-1)
    cam = np.einsum("bhwk,kb->bhw", s, kernel[:, top1]) / (s.shape[1] * s.shape[2])
    np.testing.assert_allclose(np.asarray(got["out_relu"]), cam, rtol=1e-3, atol=1e-5)
    dgl_maps = dgl(images, method="dgl")
    assert all(np.isfinite(np.asarray(m)).all() for m in dgl_maps.values())


def test_compiled_once_per_mode():
    model = gap_model()
    dgl = DualGradient(model, "feat")
    dgl(IMAGES)
    dgl(IMAGES + 1.0)
    fn = dgl._functions[("dgl", False)]
    assert fn.experimental_get_tracing_count() == 1


def test_errors_are_clear():
    model = gap_model()
    with pytest.raises(ValueError, match="no sub-layer 'nope'"):
        DualGradient(model, "nope")
    with pytest.raises(ValueError, match="method"):
        DualGradient(model, "feat", method="cam")
    with pytest.raises(ValueError, match=r"need \[B, H, W, K\]"):
        DualGradient(model, "fc")(IMAGES)


def test_on_package_cam_model_nested_backbone():
    """The package's CAM model: dict outputs, layer two sub-models deep."""
    from wsol_keras.configs import synthetic_cam
    from wsol_keras.models.registry import build_model

    config = synthetic_cam.get_config("smoke")
    info = {
        "num_classes": 8,
        "class_names": list("abcdefgh"),
        "hierarchy_sizes": [4],
        "image_size": 32,
    }
    model = build_model(config, info)
    images = (
        np.random.default_rng(4).uniform(0, 255, size=(2, 32, 32, 3)).astype(np.float32)
    )
    out = model(images, training=False)
    path = "backbone/small_cnn_features/stage3_relu3"
    got = DualGradient(
        model, [path, "backbone/small_cnn_features/stage2_pool"], method="pcs"
    )(images, return_logits=True)
    assert got[path].shape == (2, 8, 8)
    assert got["backbone/small_cnn_features/stage2_pool"].shape == (2, 8, 8)
    # Eq. 5 on the map feeding the 1x1 classifier + GAP: (CAM_c - bias_c) / (h*w).
    c = np.asarray(out["logits"]).argmax(-1)
    bias = np.asarray(model.head.classifier.bias)
    cams = np.asarray(out["cams"])
    expected = np.stack([(cams[i, ..., c[i]] - bias[c[i]]) / 64.0 for i in range(2)])
    np.testing.assert_allclose(np.asarray(got[path]), expected, rtol=1e-3, atol=1e-5)


def test_layer_sweep_table_on_synthetic_source():
    from wsol_keras import data as data_lib
    from wsol_keras.evaluation import metrics as metrics_lib
    from wsol_keras.configs import synthetic_cam
    from wsol_keras.evaluation.layer_sweep import format_sweep_table, layer_sweep
    from wsol_keras.models.registry import build_model

    config = synthetic_cam.get_config("smoke")
    config.data.image_size = 32
    source = data_lib.get_source(config.data)
    info = {
        "num_classes": source.num_classes,
        "class_names": list(source.class_names),
        "hierarchy_sizes": [4],
        "image_size": 32,
    }
    model = build_model(config, info)
    layers = [
        "backbone/small_cnn_features/stage3_relu3",
        "backbone/small_cnn_features/stage2_relu2",
    ]
    results = layer_sweep(model, source, layers, max_images=6, batch_size=4)
    assert list(results) == layers
    for r in results.values():
        assert r["num_images"] == 6
        assert 0.0 <= r["gt_known_loc"] <= 100.0 and 0.0 <= r["max_box_acc_v2"] <= 100.0
    # Same numbers as scoring the GT-class DGL maps of one layer by hand.
    acc = metrics_lib.BoxAccuracy(np.arange(0, 1, 0.01), (50,), multi_contour=False)
    dgl = DualGradient(model, layers[1])
    for batch in source.dataset("test").take(6).batch(4):
        m = dgl(tf.cast(batch["image"], tf.float32), labels=batch["label"])[layers[1]]
        m = np.stack([cv2.resize(np.asarray(x, np.float32), (32, 32), interpolation=cv2.INTER_CUBIC) for x in np.asarray(m)])
        lo = m.min(axis=(1, 2), keepdims=True)
        hi = m.max(axis=(1, 2), keepdims=True)
        m = np.where(hi > lo, (m - lo) / np.where(hi > lo, hi - lo, 1.0), 0.0)
        gt = [b[:k] for b, k in zip(batch["boxes"].numpy(), batch["num_boxes"].numpy())]
        acc.update(m, gt)
    np.testing.assert_allclose(
        results[layers[1]]["gt_known_loc"], acc.result()["max_box_acc_iou50"]
    )
    table = format_sweep_table(results)
    assert "GT-known Loc" in table and layers[0] in table
