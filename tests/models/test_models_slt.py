"""Tests for the SLT-Net model (localizer / regressor / classifier, Eq. 1-5)."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from wsol_keras.training import trainer as train_lib
from wsol_keras.configs import cub_vgg16_slt, synthetic_cam, synthetic_slt
from wsol_keras.localization.boxes import extent_box_from_maps
from wsol_keras.models import slt
from wsol_keras.models.registry import build_model

SIZE = 32
DATA_INFO = {
    "num_classes": 8,
    "class_names": [f"c{i}" for i in range(8)],
    "hierarchy_sizes": [4],
    "image_size": SIZE,
}


def tiny_batch(n=4, seed=0):
    rng = np.random.default_rng(seed)
    x = {
        "image": rng.uniform(0, 255, size=(n, SIZE, SIZE, 3)).astype(np.float32),
        "label": (np.arange(n) % 8).astype(np.int32),
        "hierarchy": (np.arange(n)[:, None] % 4).astype(np.int32),
    }
    return x, x["label"]


def smoke_config():
    config = synthetic_slt.get_config("smoke")
    config.data.image_size = SIZE
    config.method.regressor_hidden = 16
    return config


def test_extent_box_normalization_hand_example():
    maps = np.zeros((2, 8, 10), np.float32)
    maps[0, 2:5, 1:7] = 1.0  # rows 2..4, cols 1..6
    maps[0, 6, 8] = 0.1  # below threshold
    # map 1 has no foreground -> full image
    got = np.asarray(extent_box_from_maps(maps, 0.5))
    np.testing.assert_allclose(got[0], [1 / 9, 2 / 7, 6 / 9, 4 / 7], rtol=1e-6)
    np.testing.assert_allclose(got[1], [0, 0, 1, 1])


def test_smooth_l1_matches_eq4():
    pred = np.array([[0.0, 0.5, 2.0, -1.5], [0.2, 0.2, 0.2, 0.2]], np.float32)
    target = np.array([[0.5, 0.5, 0.0, 0.0], [0.2, 0.2, 0.2, 1.4]], np.float32)
    # row 0: 0.5*0.25 + 0 + (2-0.5) + (1.5-0.5) = 2.625; row 1: 1.2-0.5 = 0.7
    np.testing.assert_allclose(
        float(slt.smooth_l1(pred, target)), (2.625 + 0.7) / 2, rtol=1e-6
    )


def test_build_shapes_and_outputs():
    config = smoke_config()
    model = train_lib.build_compiled_model(config, DATA_INFO)
    x, _ = tiny_batch()
    out = model(x["image"], training=False)
    assert out["logits"].shape == (4, 8)
    assert out["cams"].shape == (4, SIZE // 4, SIZE // 4, 8)
    assert out["boxes"].shape == (4, 4)
    b = np.asarray(out["boxes"])
    assert b.min() >= 0.0 and b.max() <= 1.0
    assert model.top_k == 2
    # Three separate backbones.
    names = {
        model.backbone.name,
        model.regressor_backbone.name,
        model.classifier_backbone.name,
    }
    assert len(names) == 3


@pytest.mark.slow
def test_one_fit_step_trains_all_terms():
    config = smoke_config()
    model = train_lib.build_compiled_model(config, DATA_INFO)
    x, y = tiny_batch()
    before = [np.asarray(v).copy() for v in model.trainable_variables]
    hist = model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    logs = {k: v[-1] for k, v in hist.history.items()}
    for name in ("loss", "smt_loss", "vst_loss", "reg_loss", "cls_loss"):
        assert name in logs and np.isfinite(logs[name]), (name, logs)
    assert logs["vst_loss"] > 0.0
    changed = {
        net: any(
            not np.allclose(b, np.asarray(v))
            for b, v in zip(before, model.trainable_variables)
            if any(v is w for w in getattr(model, net).trainable_variables)
        )
        for net in ("backbone", "regressor_backbone", "classifier_backbone")
    }
    assert all(changed.values()), changed


def test_regressor_target_has_no_gradient_into_localizer():
    config = smoke_config()
    model = train_lib.build_compiled_model(config, DATA_INFO)
    x, _ = tiny_batch()
    images = tf.constant(x["image"])
    with tf.GradientTape() as tape:
        out = model(x, training=True)
        reg = model.loss_terms(x, out)["reg"]
    loc_vars = model.backbone.trainable_variables + model.cam_head.trainable_variables
    grads = tape.gradient(reg, loc_vars + model.regressor_fc2.trainable_variables)
    assert all(g is None for g in grads[: len(loc_vars)])
    assert all(g is not None for g in grads[len(loc_vars) :])
    # The target is the extent box of the localizer's top-K ACAM (Eq. 9).
    cams = np.asarray(out["cams"])
    logits = np.asarray(out["localizer_logits"])
    top = np.argsort(-logits, axis=1)[:, :2]
    acam = np.stack([cams[i][..., top[i]].mean(-1) for i in range(4)])
    up = tf.image.resize(acam[..., None], (SIZE, SIZE))[..., 0].numpy()
    lo, hi = up.min((1, 2), keepdims=True), up.max((1, 2), keepdims=True)
    norm = (up - lo) / np.where(hi > lo, hi - lo, 1)
    for i in range(4):
        ys, xs = np.nonzero(norm[i] >= 0.2)
        expected = [
            xs.min() / (SIZE - 1),
            ys.min() / (SIZE - 1),
            xs.max() / (SIZE - 1),
            ys.max() / (SIZE - 1),
        ]
        target = np.asarray(
            model.localizer_boxes(out["cams"], out["localizer_logits"], (SIZE, SIZE))
        )
        np.testing.assert_allclose(target[i], expected, atol=1e-6)
    del images


def test_configs():
    cub = cub_vgg16_slt.get_config()
    assert cub.method.name == "slt" and cub.model.backbone == "vgg16"
    assert (cub.train.learning_rate, cub.train.batch_size, cub.train.epochs) == (
        0.0002,
        16,
        4,
    )
    assert (cub.train.momentum, cub.train.weight_decay) == (0.9, 5e-4)
    assert cub.data.image_size == 224
    assert cub.train.crop_scale == pytest.approx(256 / 224)
    assert (cub.method.k, cub.method.alpha, cub.method.beta) == (0.15, 0.4, 10.0)
    syn = synthetic_slt.get_config()
    assert syn.train.epochs == synthetic_cam.get_config().train.epochs
    with pytest.raises(ValueError, match="1 <= K < number of classes"):
        bad = smoke_config()
        bad.method.k = 8
        build_model(bad, DATA_INFO)


@pytest.mark.slow
def test_one_step_under_mirrored_strategy_two_cpus():
    code = textwrap.dedent(f"""
        import numpy as np, tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from wsol_keras.training import trainer as train_lib
        from wsol_keras.configs import synthetic_slt
        config = synthetic_slt.get_config("smoke")
        config.data.image_size = {SIZE}
        config.method.regressor_hidden = 16
        info = {DATA_INFO!r}
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        with strategy.scope():
            model = train_lib.build_compiled_model(config, info)
        rng = np.random.default_rng(0)
        x = {{"image": rng.uniform(0, 255, size=(4, {SIZE}, {SIZE}, 3)).astype(np.float32),
              "label": np.arange(4, dtype=np.int32),
              "hierarchy": (np.arange(4)[:, None] % 4).astype(np.int32)}}
        ds = tf.data.Dataset.from_tensor_slices((x, x["label"])).batch(4)
        hist = model.fit(ds, epochs=1, verbose=0)
        logs = {{k: v[-1] for k, v in hist.history.items()}}
        assert all(np.isfinite(v) for v in logs.values()), logs
        assert logs["vst_loss"] > 0, logs
        print("OK", logs)
        """)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(
        os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", "")
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=root,
    )
    assert proc.returncode == 0 and "OK" in proc.stdout, proc.stderr[-3000:]


def test_mixed_precision_losses_in_float32():
    import keras

    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = build_model(smoke_config(), DATA_INFO)
        x, _ = tiny_batch()
        out = model(x, training=True)
        terms = model.loss_terms(x, out)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert out["logits"].dtype == "float32" and out["cams"].dtype == "float32"
    assert out["boxes"].dtype == "float32"
    for name, value in terms.items():
        assert value.dtype == "float32" and np.isfinite(float(value)), name
    assert set(terms) == {"smt", "vst", "reg", "cls"}
