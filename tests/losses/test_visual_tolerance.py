"""Tests for SLT-Net's visual-stimulus tolerance (Eq. 10-13)."""

import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from layer_test_util import run_layer_test
from wsol_keras.losses.visual_tolerance import (
    VisualStimulusTransform,
    color_jitter,
    inverse_spatial_transform,
    sample_transform_params,
    spatial_transform,
    visual_stimulus_tolerance_loss,
)


def params_of(flip, scale, **colour):
    b = len(flip)
    out = {
        "brightness": np.zeros(b, np.float32),
        "contrast": np.ones(b, np.float32),
        "saturation": np.ones(b, np.float32),
        "hue": np.zeros(b, np.float32),
        "flip": np.asarray(flip, np.float32),
        "scale": np.asarray(scale, np.float32),
    }
    out.update({k: np.asarray(v, np.float32) for k, v in colour.items()})
    return out


def np_bilinear(img, xs, ys):
    """Bilinear sample of img [H, W, C] at float (x, y); 0 outside."""
    h, w = img.shape[:2]
    out = np.zeros((len(xs), img.shape[2]))
    for n, (x, y) in enumerate(zip(xs, ys)):
        x0, y0 = int(np.floor(x)), int(np.floor(y))
        for xi, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
            for yi, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
                if 0 <= xi < w and 0 <= yi < h and wx * wy > 0:
                    out[n] += wx * wy * img[yi, xi]
    return out


def ramp(b, h, w, c=1):
    """A map linear in (x, y): bilinear interpolation reproduces it exactly."""
    yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    base = 0.7 * xx + 0.3 * yy + 1.0
    return np.tile(base[None, :, :, None], (b, 1, 1, c)).astype(np.float32) * np.arange(
        1, c + 1, dtype=np.float32
    )


def test_flip_is_exact_and_inverted():
    rng = np.random.default_rng(0)
    maps = rng.normal(size=(2, 5, 6, 3)).astype(np.float32)
    p = params_of([1, 0], [1, 1])
    fwd = np.asarray(spatial_transform(maps, p))
    np.testing.assert_allclose(fwd[0], maps[0, :, ::-1], atol=1e-6)
    np.testing.assert_allclose(fwd[1], maps[1], atol=1e-6)
    back, valid = inverse_spatial_transform(fwd, p)
    np.testing.assert_allclose(np.asarray(back), maps, atol=1e-6)
    assert np.all(np.asarray(valid) == 1.0)


@pytest.mark.parametrize("flip,scale", [(0, 2.0), (1, 1.5), (0, 0.6), (1, 0.8)])
def test_forward_zoom_matches_definition(flip, scale):
    # x_in = c + F (x_t - c) / s, pixel centres at integers, c = (size-1)/2.
    rng = np.random.default_rng(1)
    img = rng.normal(size=(1, 7, 9, 2)).astype(np.float32)
    got = np.asarray(spatial_transform(img, params_of([flip], [scale])))[0]
    cy, cx = 3.0, 4.0
    sign = -1.0 if flip else 1.0
    yt, xt = np.meshgrid(np.arange(7), np.arange(9), indexing="ij")
    xs = cx + sign * (xt.ravel() - cx) / scale
    ys = cy + (yt.ravel() - cy) / scale
    expected = np_bilinear(img[0], xs, ys).reshape(7, 9, 2)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_inverse_undoes_zoom_on_known_map():
    # 9x9 ramp, zoom-in s=2 about (4,4): only u in [2, 6] stays in view.
    maps = ramp(1, 9, 9, 2)
    p = params_of([0], [2.0])
    back, valid = inverse_spatial_transform(spatial_transform(maps, p), p)
    valid = np.asarray(valid)[0, ..., 0]
    expected_valid = np.zeros((9, 9))
    expected_valid[2:7, 2:7] = 1
    np.testing.assert_array_equal(valid, expected_valid)
    np.testing.assert_allclose(
        np.asarray(back)[0][valid > 0], maps[0][valid > 0], atol=1e-4
    )


def test_inverse_undoes_zoom_out_with_flip():
    maps = ramp(2, 8, 8, 1)
    p = params_of([1, 0], [0.5, 0.75])
    back, valid = inverse_spatial_transform(spatial_transform(maps, p), p)
    back, valid = np.asarray(back), np.asarray(valid)
    # Zooming out keeps the whole original in view except the seam at the
    # padding border, where bilinear reads the zero fill.
    assert valid[..., 0].mean() > 0.5
    np.testing.assert_allclose(
        back[valid[..., 0] > 0], maps[valid[..., 0] > 0], atol=1e-4
    )


def test_vst_zero_for_equivariant_localizer_positive_otherwise():
    images = ramp(3, 8, 8, 3) * 10.0
    p = params_of([1, 0, 1], [1.25, 0.7, 1.0])

    def identity_localizer(x):  # perfectly equivariant to flip and zoom
        return x

    cams_o = identity_localizer(images)
    cams_t = identity_localizer(spatial_transform(images, p))
    back, valid = inverse_spatial_transform(cams_t, p)
    assert float(visual_stimulus_tolerance_loss(cams_o, back, valid)) < 1e-6

    def position_bound_localizer(x):  # ignores the image: not equivariant
        return tf.ones_like(x) * ramp(1, 8, 8, 3)

    cams_o = position_bound_localizer(images)
    cams_t = position_bound_localizer(spatial_transform(images, p))
    back, valid = inverse_spatial_transform(cams_t, p)
    assert float(visual_stimulus_tolerance_loss(cams_o, back, valid)) > 1.0


def test_alignment_across_resolutions():
    # CAM at half resolution (2x2 average pool): inverse at the CAM's size
    # must align with the original's CAM ("rescale and align").
    images = ramp(2, 16, 16, 1)
    pool = keras.layers.AveragePooling2D(2)
    p = params_of([1, 0], [1.3, 1.6])
    cams_o = pool(images)
    cams_t = pool(spatial_transform(images, p))
    back, valid = inverse_spatial_transform(cams_t, p)
    v = np.asarray(valid)[..., 0] > 0
    assert v.sum() > 10
    np.testing.assert_allclose(np.asarray(back)[v], np.asarray(cams_o)[v], atol=1e-4)
    # The unflipped, unscaled CAM would not match: the check is not vacuous.
    assert np.abs(np.asarray(cams_t)[0] - np.asarray(cams_o)[0]).max() > 1.0


def test_vst_loss_matches_eq13():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(2, 3, 4, 5)).astype(np.float32)
    b = rng.normal(size=(2, 3, 4, 5)).astype(np.float32)
    m = (rng.uniform(size=(2, 3, 4, 1)) > 0.3).astype(np.float32)
    expected = np.mean([((a[i] - b[i]) ** 2 * m[i]).sum() / 12.0 for i in range(2)])
    got = float(visual_stimulus_tolerance_loss(a, b, m))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    np.testing.assert_allclose(
        float(visual_stimulus_tolerance_loss(a, b)),
        np.mean(((a - b) ** 2).sum(axis=(1, 2, 3)) / 12.0),
        rtol=1e-5,
    )


@pytest.mark.parametrize(
    "colour,reference",
    [
        ({"brightness": [0.1, -0.2]}, lambda x, i, d: tf.image.adjust_brightness(x, d)),
        ({"contrast": [1.3, 0.6]}, lambda x, i, f: tf.image.adjust_contrast(x, f)),
        ({"saturation": [1.4, 0.5]}, lambda x, i, f: tf.image.adjust_saturation(x, f)),
        ({"hue": [0.08, -0.3]}, lambda x, i, d: tf.image.adjust_hue(x, d)),
    ],
)
def test_color_jitter_matches_tf_image(colour, reference):
    rng = np.random.default_rng(3)
    images = rng.uniform(0.05, 0.95, size=(2, 6, 6, 3)).astype(np.float32)
    p = params_of([0, 0], [1, 1], **colour)
    got = np.asarray(color_jitter(images * 255.0, p)) / 255.0
    ((name, values),) = colour.items()
    for i in range(2):
        ref = np.clip(np.asarray(reference(images[i], i, values[i])), 0.0, 1.0)
        np.testing.assert_allclose(got[i], ref, atol=2e-4)


def test_params_are_per_image_and_in_range():
    gen = keras.random.SeedGenerator(7)
    p = sample_transform_params(
        gen, 64, brightness=0.2, hue=0.1, scale_range=(0.9, 1.1)
    )
    s = np.asarray(p["scale"])
    assert s.min() >= 0.9 and s.max() <= 1.1 and s.std() > 0.01
    assert np.all(np.abs(np.asarray(p["brightness"])) <= 0.2)
    assert np.all(np.abs(np.asarray(p["hue"])) <= 0.1)
    flips = np.asarray(p["flip"])
    assert set(np.unique(flips)) <= {0.0, 1.0} and 5 < flips.sum() < 59
    # The generator advances: a second draw differs.
    assert not np.allclose(np.asarray(sample_transform_params(gen, 64)["scale"]), s)


def test_layer_in_tf_function_and_gradients():
    layer = VisualStimulusTransform(seed=3)
    conv = keras.layers.Conv2D(4, 3, padding="same")
    images = tf.constant(ramp(2, 8, 8, 3) * 20.0)

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            xt, params = layer(x, training=True)
            cams_o, cams_t = conv(x), conv(xt)
            back, valid = layer.inverse(cams_t, params)
            loss = visual_stimulus_tolerance_loss(cams_o, back, valid)
        return loss, tape.gradient(loss, conv.trainable_variables), xt

    loss, grads, xt = step(images)
    assert np.isfinite(float(loss)) and float(loss) > 0
    assert all(g is not None and np.isfinite(np.asarray(g)).all() for g in grads)
    assert xt.shape == images.shape
    v = np.asarray(xt)
    assert v.min() >= -1e-3 and v.max() <= 255.0 + 1e-3


def test_layer_keras_contract(tmp_path):
    # Zero-width jitter ranges, no flip and scale 1: the sampled transform is
    # the identity, so outputs compare across the clone and the .keras file.
    layer_kwargs = {
        "brightness": 0.0,
        "contrast": 0.0,
        "saturation": 0.0,
        "hue": 0.0,
        "flip_prob": 0.0,
        "scale_range": (1.0, 1.0),
        "seed": 5,
    }
    images = np.random.default_rng(3).uniform(0, 255, (2, 8, 8, 3)).astype(np.float32)
    out, params = run_layer_test(
        VisualStimulusTransform,
        layer_kwargs,
        (2, 8, 8, 3),
        input_data=images,
        tmp_path=tmp_path,
        rtol=1e-5,
        atol=1e-3,
    )
    np.testing.assert_allclose(np.asarray(out), images, atol=1e-3)


def test_layer_config_keeps_every_argument_and_validates():
    layer = VisualStimulusTransform(
        brightness=0.1, hue=0.02, scale_range=(0.7, 1.3), seed=5
    )
    clone = VisualStimulusTransform.from_config(layer.get_config())
    assert clone.scale_range == (0.7, 1.3) and clone.hue == 0.02 and clone.seed == 5
    with pytest.raises(ValueError, match="scale_range"):
        VisualStimulusTransform(scale_range=(1.2, 0.8))
    with pytest.raises(ValueError, match="hue"):
        VisualStimulusTransform(hue=0.7)


def test_under_mirrored_strategy_two_cpus():
    code = textwrap.dedent("""
        import numpy as np, tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        import keras
        from wsol_keras.losses.visual_tolerance import (
            VisualStimulusTransform, visual_stimulus_tolerance_loss)
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        with strategy.scope():
            layer = VisualStimulusTransform(seed=1)
            conv = keras.layers.Conv2D(2, 3, padding="same")
            conv.build((None, 8, 8, 3))
        images = tf.random.uniform((4, 8, 8, 3), 0, 255)

        @tf.function
        def step(x):
            def replica(x):
                with tf.GradientTape() as tape:
                    xt, p = layer(x, training=True)
                    back, valid = layer.inverse(conv(xt), p)
                    loss = visual_stimulus_tolerance_loss(conv(x), back, valid)
                grads = tape.gradient(loss, conv.trainable_variables)
                return loss, grads[0]
            loss, g = strategy.run(replica, args=(x,))
            return strategy.reduce("MEAN", loss, axis=None), strategy.reduce("SUM", g, axis=None)

        dist = strategy.experimental_distribute_values_from_function(
            lambda ctx: images[2 * ctx.replica_id_in_sync_group: 2 * ctx.replica_id_in_sync_group + 2])
        loss, g = step(dist)
        assert np.isfinite(float(loss)) and float(loss) > 0, float(loss)
        assert np.isfinite(g.numpy()).all()
        print("OK", float(loss))
        """)
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0 and "OK" in proc.stdout, proc.stderr[-3000:]
