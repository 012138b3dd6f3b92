"""SPN, ACoL and DANet models: build on small_cnn, fit one step, output contract,
MirroredStrategy on two logical CPUs, mixed precision."""

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from wsol_keras.configs import synthetic_acol, synthetic_danet, synthetic_spn
from wsol_keras.layers.divergent_activation import localization_maps
from wsol_keras.models.registry import build_model

SIZE = 32  # small_cnn: 8x8 features (16x16 at the shallow DANet level)
C = 8
DATA_INFO = {
    "num_classes": C,
    "class_names": [f"c{i}" for i in range(C)],
    "hierarchy_sizes": [4, 2],
    "image_size": SIZE,
}
ANCESTORS = np.stack([np.arange(C) // 2, np.arange(C) // 4], axis=1)
MODULES = {
    "spn": synthetic_spn,
    "acol": synthetic_acol,
    "danet": synthetic_danet,
}


def smoke_config(name):
    config = MODULES[name].get_config("smoke")
    config.data.image_size = SIZE
    return config


def batch(n=4, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, C, n).astype(np.int32)
    return {
        "image": rng.uniform(0, 255, (n, SIZE, SIZE, 3)).astype(np.float32),
        "label": labels,
        "hierarchy": ANCESTORS[labels].astype(np.int32),
    }


def build(name, config=None, info=None):
    model = build_model(config or smoke_config(name), info or DATA_INFO)
    model.compile(optimizer=keras.optimizers.SGD(0.01))
    return model


def minmax(x):
    lo = x.min(axis=(1, 2), keepdims=True)
    hi = x.max(axis=(1, 2), keepdims=True)
    return np.where(hi > lo, (x - lo) / np.where(hi > lo, hi - lo, 1), 0)


@pytest.mark.parametrize("name", ["spn", "acol", "danet"])
def test_builds_fits_one_step_and_meets_output_contract(name):
    model = build(name)
    x = batch()
    out = model(x["image"], training=False)  # inference: images only
    assert out["logits"].shape == (4, C) and out["logits"].dtype == "float32"
    cams = out["cams"]
    assert len(cams.shape) == 4 and cams.shape[0] == 4 and cams.shape[-1] == C
    assert cams.dtype == "float32" and np.all(np.isfinite(cams))
    hist = model.fit(x, x["label"], batch_size=4, epochs=1, verbose=0)
    logs = {k: v[-1] for k, v in hist.history.items()}
    assert all(np.isfinite(v) for v in logs.values()), logs
    assert logs["loss"] > 0


def test_spn_logits_are_the_spatial_sum_of_response_maps():
    model = build("spn")
    out = model(batch()["image"], training=False)
    bias = model.classifier.bias.numpy()
    # Sec. 3.3: logits = W . sum_hw (U o M) + b = sum_hw R_c + b (no dropout at test).
    np.testing.assert_allclose(
        out["logits"], np.sum(out["cams"], axis=(1, 2)) + bias, rtol=1e-4, atol=1e-5
    )
    np.testing.assert_allclose(np.sum(out["proposal"], axis=(1, 2)), 1.0, atol=1e-5)


def test_spn_multi_label_loss_is_mean_sigmoid_ce():
    config = smoke_config("spn")
    config.method.multi_label = True
    model = build("spn", config)
    logits = np.random.default_rng(1).normal(size=(3, C)).astype(np.float32)
    multi_hot = np.zeros((3, C), np.float32)
    multi_hot[0, [1, 4]] = multi_hot[1, 0] = multi_hot[2, [2, 3, 7]] = 1
    got = float(model.loss_terms({"label": multi_hot}, {"logits": logits})["bce"])
    p = 1 / (1 + np.exp(-logits.astype(np.float64)))
    expected = -np.mean(multi_hot * np.log(p) + (1 - multi_hot) * np.log(1 - p))
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_acol_fused_map_and_erasing_at_inference():
    model = build("acol")
    images = batch()["image"]
    out = model(images, training=False)
    a, b = np.asarray(out["cams_a"]), np.asarray(out["cams_b"])
    np.testing.assert_allclose(out["cams"], np.maximum(minmax(a), minmax(b)), atol=1e-6)
    # B's input is S (after the released pools) erased with A's top-1 map
    # (delta kept at test time).
    feats = np.asarray(model.pooled_features(model.backbone(images)))
    top1 = np.argmax(a.mean(axis=(1, 2)), axis=1)
    att = minmax(np.stack([a[i, :, :, c] for i, c in enumerate(top1)])[..., None])[
        ..., 0
    ]
    erased = feats * (att < 0.6)[..., None]
    np.testing.assert_allclose(b, model.head_b(erased), rtol=1e-4, atol=1e-4)


def test_acol_loss_uses_both_branches():
    model = build("acol")
    x = batch()
    terms = model.loss_terms(x, model(x, training=True))
    assert set(terms) == {"ce_a", "ce_b"}
    assert all(float(v) > 0 for v in terms.values())


def test_danet_level_outputs_and_hierarchy_losses():
    model = build("danet")
    x = batch()
    out = model(x, training=True)
    assert out["logits_l0"].shape == (4, C) and out["logits_l1"].shape == (4, 4)
    assert out["logits_l2"].shape == (4, 2)
    assert out["maps_l0"].shape[-2:] == (C, 8) and out["maps_l2"].shape[1:3] == (16, 16)
    terms = model.loss_terms(x, out, training=False)
    # HDA with labels leaf, parent, grandparent (0.5 each) from numpy.
    expected = 0.0
    for logits, labels in [
        (out["logits_l0"], x["label"]),
        (out["logits_l1"], x["hierarchy"][:, 0]),
        (out["logits_l2"], x["hierarchy"][:, 1]),
    ]:
        z = np.asarray(logits, np.float64)
        logp = z - z.max(1, keepdims=True)
        logp -= np.log(np.exp(logp).sum(1, keepdims=True))
        expected += 0.5 * -np.mean(logp[np.arange(4), labels])
    np.testing.assert_allclose(float(terms["hda"]), expected, rtol=1e-5)
    assert 0 <= float(terms["dda"]) <= 0.01 + 1e-6  # lambda x mean |cos|


def torch_upsample_align_corners(x, out_h, out_w):
    """numpy copy of torch F.upsample(mode='bilinear', align_corners=True) on
    [B, h, w, C], pixel by pixel (source coordinate i * (in - 1) / (out - 1))."""
    b, h, w, c = x.shape
    out = np.zeros((b, out_h, out_w, c), np.float64)
    for i in range(out_h):
        sy = i * (h - 1) / (out_h - 1) if out_h > 1 else 0.0
        y0 = min(int(np.floor(sy)), h - 1)
        y1 = min(y0 + 1, h - 1)
        fy = sy - y0
        for j in range(out_w):
            sx = j * (w - 1) / (out_w - 1) if out_w > 1 else 0.0
            x0 = min(int(np.floor(sx)), w - 1)
            x1 = min(x0 + 1, w - 1)
            fx = sx - x0
            out[:, i, j] = (
                (1 - fy) * (1 - fx) * x[:, y0, x0]
                + (1 - fy) * fx * x[:, y0, x1]
                + fy * (1 - fx) * x[:, y1, x0]
                + fy * fx * x[:, y1, x1]
            )
    return out


def released_danet_map(maps, logits, leaf_class, image):
    """xuehaolan/DANet val_hierarchy.py + get_topk_boxes_hier for one image:
    child/parent get_*_maps (mean of ReLU over K) upsampled to the root size
    (align_corners=True), the ancestor levels' top-1 predicted class maps
    added, the sum normalized once (norm_atten_map)."""
    size = maps[2].shape[1:3]
    level = [np.maximum(m, 0).mean(-1) for m in maps]
    child = torch_upsample_align_corners(level[0], *size)[image, :, :, leaf_class]
    parent_cls = np.argsort(logits[1][image])[::-1][0]
    root_cls = np.argsort(logits[2][image])[::-1][0]
    parent = torch_upsample_align_corners(level[1], *size)[image, :, :, parent_cls]
    root = level[2][image, :, :, root_cls]
    total = child + parent + root
    return (total - total.min()) / (total.max() - total.min())


def test_danet_fusion_matches_released_evaluation():
    model = build("danet")
    rng = np.random.default_rng(3)
    # Leaf and parent coarser than the grandparent, as VGG's 14 vs 28 maps.
    maps = [
        rng.normal(size=(2, hw, hw, n, 3)).astype(np.float32)
        for hw, n in ((3, C), (3, 4), (5, 2))
    ]
    outs = [{"maps": m, "logits": rng.normal(size=(2, m.shape[3])).astype(np.float32)} for m in maps]
    got = np.asarray(model._localization(outs))
    assert got.shape == (2, 5, 5, C)
    logits = [o["logits"] for o in outs]
    for image in range(2):
        for c in (0, 5):
            expected = released_danet_map(maps, logits, c, image)
            np.testing.assert_allclose(got[image, :, :, c], expected, rtol=1e-5, atol=1e-5)


def test_danet_per_level_fusion_and_true_ancestor_options():
    info = dict(DATA_INFO, ancestors=ANCESTORS.tolist())
    config = smoke_config("danet")
    config.method.fusion = "per_level"
    config.method.ancestor_maps = "ancestor"
    model = build("danet", config=config, info=info)
    rng = np.random.default_rng(2)
    maps = [rng.normal(size=(2, 4, 4, n, 3)).astype(np.float32) for n in (C, 4, 2)]
    outs = [{"maps": m, "logits": m.mean(axis=(1, 2, 4))} for m in maps]
    got = np.asarray(model._localization(outs))
    levels = [minmax(np.maximum(m, 0).mean(-1)) for m in maps]
    expected = (
        levels[0] + levels[1][..., ANCESTORS[:, 0]] + levels[2][..., ANCESTORS[:, 1]]
    )
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    # Per-level fusion without the table: each ancestor level adds its top-1 map.
    config = smoke_config("danet")
    config.method.fusion = "per_level"
    plain = build("danet", config=config)
    got = np.asarray(plain._localization(outs))
    top = [np.argmax(o["logits"], axis=1) for o in outs]
    expected = levels[0] + sum(
        np.stack([levels[l][i, :, :, top[l][i]] for i in range(2)])[..., None]
        for l in (1, 2)
    )
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        localization_maps(maps[0]), np.maximum(maps[0], 0).mean(-1), rtol=1e-6
    )


def test_danet_without_hierarchy_uses_one_head():
    info = dict(DATA_INFO, hierarchy_sizes=[])
    model = build("danet", info=info)
    x = batch()
    x["hierarchy"] = np.zeros((4, 0), np.int32)
    assert model.num_levels == 1
    hist = model.fit(x, x["label"], batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(hist.history["loss"][-1])


@pytest.mark.slow
def test_mixed_precision_one_step():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        for name in ("spn", "acol", "danet"):
            model = build(name)
            x = batch()
            out = model(x["image"], training=False)
            assert out["logits"].dtype == "float32" and out["cams"].dtype == "float32"
            hist = model.fit(x, x["label"], batch_size=4, epochs=1, verbose=0)
            assert np.isfinite(hist.history["loss"][-1]), name
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.mark.slow
def test_one_step_under_mirrored_strategy_two_cpus():
    code = textwrap.dedent(f"""
        import numpy as np, tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from wsol_keras.training import trainer as train_lib
        from wsol_keras.configs import synthetic_acol, synthetic_danet, synthetic_spn
        info = {DATA_INFO!r}
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        rng = np.random.default_rng(0)
        labels = np.arange(4, dtype=np.int32) * 2
        x = {{"image": rng.uniform(0, 255, size=(4, {SIZE}, {SIZE}, 3)).astype(np.float32),
              "label": labels,
              "hierarchy": np.stack([labels // 2, labels // 4], 1).astype(np.int32)}}
        ds = tf.data.Dataset.from_tensor_slices((x, x["label"])).batch(4)
        for cfg in (synthetic_spn, synthetic_acol, synthetic_danet):
            config = cfg.get_config("smoke")
            config.data.image_size = {SIZE}
            with strategy.scope():
                model = train_lib.build_compiled_model(config, info)
            hist = model.fit(ds, epochs=1, verbose=0)
            logs = {{k: v[-1] for k, v in hist.history.items()}}
            assert all(np.isfinite(v) for v in logs.values()), logs
            print("OK", config.method.name, logs)
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
    assert proc.returncode == 0 and proc.stdout.count("OK") == 3, proc.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["spn", "acol", "danet"])
def test_fit_with_jit_compile(name):
    # The random walk (while_loop), erasing (resize, argmax) and DDA sampling
    # (SeedGenerator, top_k) all compile with XLA.
    model = build_model(smoke_config(name), DATA_INFO)
    model.compile(optimizer=keras.optimizers.SGD(0.01), jit_compile=True)
    x = batch()
    hist = model.fit(x, x["label"], batch_size=4, epochs=2, verbose=0)
    assert all(np.isfinite(hist.history["loss"]))


def test_spn_cub_config_is_the_released_vgg16_sp():
    """yeezhu/SPN.pytorch demo/experiment/models.py vgg16_sp: adconv
    nn.Conv2d(512, 1024, 3, padding=1, groups=2) -> 512 / 2 * 1024 * 9 + 1024
    = 2,360,320 parameters (a dense conv: 4,719,616); SoftProposal() with the
    layer's default factor 0.15 * mW * mH = 29.4 on 14 x 14."""
    from wsol_keras.configs import cub_vgg16_spn
    from wsol_keras.models.registry import build_model

    c = cub_vgg16_spn.get_config()
    c.model.weights = None
    model = build_model(c, {"num_classes": 200, "image_size": 64})
    model(np.zeros((1, 64, 64, 3), np.float32))
    assert model.adconv.count_params() == 2_360_320
    sp = model.soft_proposal
    assert float(sp._epsilon(14, 14)) == pytest.approx(29.4, rel=1e-6)
