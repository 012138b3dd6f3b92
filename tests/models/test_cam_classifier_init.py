"""The CAM classifier's own initializer: DGL's released `linear` layer is
N(0, 0.01) (chuangchuangtan/DGL train_code/models_vgg.py `vgg_gap`:
`FullyConnected('linear', ..., kernel_initializer=tf.random_normal_initializer(stddev=0.01))`)
while its `add` 3x3 conv is `variance_scaling_initializer(scale=2.)` (He)."""

import os

import keras
import numpy as np
import pytest

from file_modules import load_module
from wsol_keras import configs as configs_pkg
from wsol_keras.configs import synthetic_cam
from wsol_keras.layers.cam_head import CAMHead
from wsol_keras.models.registry import build_model, default_method_config

CONFIG_DIR = os.path.dirname(os.path.abspath(configs_pkg.__file__))


def load(name):
    return load_module(name, os.path.join(CONFIG_DIR, name + ".py")).get_config()


def _kernel_stats(variable):
    w = np.asarray(variable, np.float64).ravel()
    return w.size, w.mean(), w.std()


def test_head_classifier_gets_its_own_initializer_and_convs_keep_he_normal():
    head = CAMHead(
        200,
        conv_filters=(1024,),
        classifier_initializer=keras.initializers.RandomNormal(stddev=0.01, seed=1),
    )
    head.build((None, 3, 3, 16))
    n, mean, std = _kernel_stats(head.classifier.kernel)  # 1024 x 200 = 204800
    assert n == 1024 * 200
    assert std == pytest.approx(0.01, rel=0.02)
    assert abs(mean) < 3 * 0.01 / np.sqrt(n)
    # he_normal of the 3x3 conv: truncated normal with std sqrt(2 / fan_in).
    _, _, conv_std = _kernel_stats(head.convs[0].kernel)
    assert conv_std == pytest.approx(np.sqrt(2.0 / (9 * 16)), rel=0.05)


def test_default_classifier_initializer_is_the_convs():
    head = CAMHead(200)
    head.build((None, 3, 3, 1024))
    _, _, std = _kernel_stats(head.classifier.kernel)
    assert std == pytest.approx(np.sqrt(2.0 / 1024), rel=0.05)  # he_normal


def test_method_field_sets_the_classifier_std_through_the_registry():
    assert default_method_config("cam").classifier_init_stddev is None
    config = synthetic_cam.get_config("smoke")
    config.method.conv_filters = (1024,)
    config.method.classifier_init_stddev = 0.01
    model = build_model(config, {"num_classes": 200, "image_size": 16})
    n, mean, std = _kernel_stats(model.head.classifier.kernel)
    assert n == 1024 * 200
    assert std == pytest.approx(0.01, rel=0.02)
    assert abs(mean) < 3 * 0.01 / np.sqrt(n)
    assert not np.asarray(model.head.classifier.bias).any()


def test_dgl_cub_config_uses_the_released_linear_init_and_others_do_not():
    assert load("cub_vgg16_dgl").method.classifier_init_stddev == pytest.approx(0.01)
    for name in ("cub_vgg16_cam", "synthetic_cam", "synthetic_dgl"):
        assert load(name).method.classifier_init_stddev is None, name
