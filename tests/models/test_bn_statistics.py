"""BatchNorm moving statistics of the from-scratch backbone track its data.

Issue: trained on a 1,200-image set (37 steps an epoch), the inference-mode model
sat at chance while training-mode accuracy was ~100%.  The BN inputs of the stem
(an unbiased conv on [0, 1] pixels) have a variance of ~0.003, while Keras starts
every moving variance at 1.0; with momentum 0.99 the initial value decays as
0.99**steps and still dominates after 12 epochs of such a set.
"""

import os

import keras
import numpy as np
import tensorflow as tf

from wsol_keras import data as data_lib
from wsol_keras.training import trainer
from wsol_keras.configs import synthetic_cam

STEPS = 80  # a little over two epochs of a 1,200-image set at batch 32


def _bn_layers(model):
    return sorted(
        (l for l in model._flatten_layers() if isinstance(l, keras.layers.BatchNormalization)),
        key=lambda l: l.name,
    )


def test_moving_statistics_reach_the_population_statistics_within_two_small_epochs():
    config = synthetic_cam.get_config("smoke")
    with config.unlocked():
        config.data.image_size = 32
        config.data.synthetic.num_train = 32
        config.train.lr_schedule = "constant"
        config.train.learning_rate = 0.0  # frozen weights: the BN inputs are stationary
    source = data_lib.get_source(config.data)
    info = trainer.data_info_of(source, config)
    model = trainer.build_compiled_model(config, info)
    arrays = source.arrays("train")
    batches = [
        (
            {
                "image": arrays["image"][i : i + 8].astype(np.float32),
                "label": arrays["label"][i : i + 8],
                "hierarchy": source.hierarchy[arrays["label"][i : i + 8]],
            },
            arrays["label"][i : i + 8],
        )
        for i in range(0, 32, 8)
    ]
    bns = _bn_layers(model.backbone)
    assert len(bns) == 7

    # Population statistics of every BN input over the four batches, in training
    # mode (upstream BNs normalize with batch statistics, as during fit).
    features = model.backbone.get_layer("small_cnn_features")
    taps = keras.Model(features.inputs, [features.get_layer(b.name).input for b in bns])
    pre = model.backbone.get_layer("preprocessing")
    inputs = [taps(pre(x["image"]), training=True) for x, _ in batches]
    for b in bns:  # undo what the taps pass did to the moving statistics
        b.moving_mean.assign(np.zeros(b.moving_mean.shape, np.float32))
        b.moving_variance.assign(np.ones(b.moving_variance.shape, np.float32))

    train_step = tf.function(model.train_step)
    for step in range(STEPS):
        train_step(batches[step % len(batches)])

    for j, b in enumerate(bns):
        values = np.concatenate([np.asarray(t[j]).reshape(-1, t[j].shape[-1]) for t in inputs])
        mean, var = values.mean(0), values.var(0)
        ratio = b.moving_variance.numpy() / var
        shift = np.abs(b.moving_mean.numpy() - mean) / np.sqrt(var)
        assert np.median(ratio) < 1.5 and np.median(ratio) > 1 / 1.5, (
            f"{b.name}: moving variance / population variance, median "
            f"{np.median(ratio):.3g} after {STEPS} steps"
        )
        assert np.median(shift) < 0.5, (
            f"{b.name}: |moving mean - population mean| / population std, median "
            f"{np.median(shift):.3g} after {STEPS} steps"
        )
