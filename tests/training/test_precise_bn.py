"""Precise BN: moving statistics replaced by population statistics (numpy-checked)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from wsol_keras.training import precise_bn
EPS = 1e-3


def _model():
    """x [B, 3, 2] -> BN1 -> Dense(4) -> BN2, nested in an outer model."""
    inputs = keras.Input((3, 2))
    h = keras.layers.BatchNormalization(epsilon=EPS, name="bn1")(inputs)
    h = keras.layers.Dense(4, use_bias=True, name="dense")(h)
    h = keras.layers.BatchNormalization(epsilon=EPS, name="bn2")(h)
    inner = keras.Model(inputs, h, name="inner")
    outer_in = keras.Input((3, 2))
    return keras.Model(outer_in, inner(outer_in) * 2.0)


def _set_weights(model, rng):
    inner = model.get_layer("inner")
    bn1, dense, bn2 = (inner.get_layer(n) for n in ("bn1", "dense", "bn2"))
    bn1.gamma.assign(rng.uniform(0.5, 2, 2).astype(np.float32))
    bn1.beta.assign(rng.normal(size=2).astype(np.float32))
    dense.kernel.assign(rng.normal(size=(2, 4)).astype(np.float32))
    dense.bias.assign(rng.normal(size=4).astype(np.float32))
    for bn in (bn1, bn2):  # arbitrary stale statistics
        bn.moving_mean.assign(rng.normal(size=bn.moving_mean.shape).astype(np.float32))
        bn.moving_variance.assign(
            rng.uniform(5, 9, bn.moving_variance.shape).astype(np.float32)
        )
    return bn1, dense, bn2


def test_moving_statistics_equal_population_statistics_of_the_bn_inputs():
    rng = np.random.default_rng(0)
    model = _model()
    bn1, dense, bn2 = _set_weights(model, rng)
    gamma, beta = bn1.gamma.numpy(), bn1.beta.numpy()
    kernel, bias = dense.kernel.numpy(), dense.bias.numpy()
    # Three batches of unequal size (the last is short), shifted means per batch.
    batches = [
        (rng.normal(size=(n, 3, 2)) * [1.0, 3.0] + shift).astype(np.float32)
        for n, shift in ((5, 0.0), (5, 2.0), (3, -1.0))
    ]
    dataset = tf.data.Dataset.from_generator(
        lambda: ((b, np.zeros(len(b), np.int32)) for b in batches),
        output_signature=(
            tf.TensorSpec((None, 3, 2), tf.float32),
            tf.TensorSpec((None,), tf.int32),
        ),
    )
    weights_before = [w.copy() for w in model.get_weights()]
    weights_before = [w for w, v in zip(weights_before, model.weights) if v.trainable]

    summary = precise_bn.recompute_batch_norm_statistics(model, dataset, 3)

    # Expected, in numpy: BN1 sees the raw inputs; BN2 sees Dense of the BN1
    # output normalized with each batch's own statistics (training mode).
    bn2_inputs = []
    for x in batches:
        flat = x.reshape(-1, 2)
        normed = (flat - flat.mean(0)) / np.sqrt(flat.var(0) + EPS) * gamma + beta
        bn2_inputs.append(normed @ kernel + bias)
    all1 = np.concatenate([x.reshape(-1, 2) for x in batches])
    all2 = np.concatenate(bn2_inputs)
    np.testing.assert_allclose(bn1.moving_mean.numpy(), all1.mean(0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(bn1.moving_variance.numpy(), all1.var(0), rtol=1e-4)
    np.testing.assert_allclose(bn2.moving_mean.numpy(), all2.mean(0), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(bn2.moving_variance.numpy(), all2.var(0), rtol=1e-4)

    assert summary["layers"] == 2 and summary["batches"] == 3 and summary["examples"] == 13
    assert summary["max_mean_shift"] > 0 and summary["max_log_var_ratio"] > 0
    assert bn1.momentum == 0.99 and bn2.momentum == 0.99  # restored
    trainable_after = [v.numpy() for v in model.weights if v.trainable]
    for a, b in zip(weights_before, trainable_after):
        np.testing.assert_array_equal(a, b)


def test_no_op_without_batch_norm_or_with_zero_batches():
    inputs = keras.Input((4,))
    plain = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    dataset = tf.data.Dataset.from_tensor_slices(np.ones((4, 4), np.float32)).batch(2)
    before = [w.copy() for w in plain.get_weights()]
    summary = precise_bn.recompute_batch_norm_statistics(plain, dataset, 2)
    assert summary["layers"] == 0 and summary["batches"] == 0
    for a, b in zip(before, plain.get_weights()):
        np.testing.assert_array_equal(a, b)

    model = _model()
    stats = [w.copy() for w in model.get_weights()]
    ds = tf.data.Dataset.from_tensor_slices(np.ones((4, 3, 2), np.float32)).batch(2)
    summary = precise_bn.recompute_batch_norm_statistics(model, ds, 0)
    assert summary["layers"] == 2 and summary["batches"] == 0
    for a, b in zip(stats, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_too_few_batches_is_an_error_naming_the_config_field_and_keeps_the_statistics():
    model = _model()
    stats = [w.copy() for w in model.get_weights()]
    ds = tf.data.Dataset.from_tensor_slices(np.ones((4, 3, 2), np.float32)).batch(2)
    with pytest.raises(ValueError, match="2 batches, 5 requested.*precise_bn_batches"):
        precise_bn.recompute_batch_norm_statistics(model, ds, 5)
    for a, b in zip(stats, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_train_saves_weights_with_precise_bn_statistics(tmp_path):
    from wsol_keras.configs import synthetic_cam
    from wsol_keras.training import trainer
    from wsol_keras.training import workdir as workdir_lib
    config = synthetic_cam.get_config("smoke")
    with config.unlocked():
        config.data.image_size = 32
        config.data.synthetic.num_train = 32
        config.train.precise_bn_batches = 4  # one pass over the 32 images
        config.train.val_localization_every = 0  # BN statistics only: no val pass
    model, source, info = trainer.train(config, str(tmp_path / "run"))

    # Stem BN input = the first conv of the [0, 1] pixels, over the training images
    # (random flips do not change per-channel statistics much).
    features = model.backbone.get_layer("small_cnn_features")
    images = source.arrays("train")["image"].astype(np.float32)
    pixels = model.backbone.get_layer("preprocessing")(images)
    stem = np.asarray(features.get_layer("stage1_conv1")(pixels)).reshape(-1, 32)
    bn = features.get_layer("stage1_bn1")
    # Two momentum steps alone would leave the variance near its initial 1.0.
    ratio = np.median(bn.moving_variance.numpy() / stem.var(0))
    assert (2 / 3) < ratio < 1.5, ratio  # within a factor 1.5 of the population variance
    shift = np.median(np.abs(bn.moving_mean.numpy() - stem.mean(0)) / stem.std(0))
    assert shift < 0.25, shift

    # The saved final weights carry the re-estimated statistics.
    fresh = trainer.build_model(config, info)
    fresh.load_weights(workdir_lib.final_weights_path(str(tmp_path / "run")))
    saved = fresh.backbone.get_layer("small_cnn_features").get_layer("stage1_bn1")
    np.testing.assert_array_equal(saved.moving_variance.numpy(), bn.moving_variance.numpy())
