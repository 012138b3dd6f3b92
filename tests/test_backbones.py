"""backbones.py: the BACKBONES table, WSOL surgery, in-graph preprocessing."""

import keras
import numpy as np
import pytest

from layer_test_util import run_layer_test
from wsol_keras import backbones


@pytest.mark.parametrize("name", sorted(backbones.BACKBONES))
def test_every_backbone_builds_with_random_weights(name):
    size = 75 if name == "inception_v3" else 64
    model = backbones.build_backbone(name, size, weights=None)
    feats = model(np.zeros((1, size, size, 3), np.float32))
    assert feats.shape[0] == 1 and feats.shape[-1] > 0
    levels = backbones.build_backbone(name, size, weights=None, levels=True)
    outs = levels(np.zeros((1, size, size, 3), np.float32))
    assert len(outs) == 3
    # Shallow-to-deep: spatial size never grows.
    sides = [o.shape[1] for o in outs]
    assert sides == sorted(sides, reverse=True)


def test_vgg16_is_cut_after_conv5_3_without_pool5():
    model = backbones.build_backbone("vgg16", 224, weights=None)
    assert model.output.shape[1:] == (14, 14, 512)


def test_resnet50_last_stride_one_doubles_the_final_map():
    plain = backbones.build_backbone("resnet50", 64, weights=None)
    s1 = backbones.build_backbone("resnet50", 64, weights=None, resnet_last_stride=1)
    assert plain.output.shape[1] == 2 and s1.output.shape[1] == 4


def test_preprocessing_caffe_matches_keras_applications():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, size=(2, 4, 4, 3)).astype(np.float32)
    ours = backbones.ImagePreprocessing("caffe")(x)
    ref = keras.applications.vgg16.preprocess_input(x.copy())
    np.testing.assert_allclose(np.asarray(ours), ref, rtol=1e-5, atol=1e-4)
    ours_tf = backbones.ImagePreprocessing("tf")(x)
    ref_tf = keras.applications.mobilenet_v2.preprocess_input(x.copy())
    np.testing.assert_allclose(np.asarray(ours_tf), ref_tf, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode", ["caffe", "tf", "unit", "none"])
def test_preprocessing_keras_layer_contract(tmp_path, mode):
    run_layer_test(
        backbones.ImagePreprocessing,
        {"mode": mode},
        (2, 4, 4, 3),
        tmp_path=tmp_path,
        rtol=1e-5,
        atol=1e-4,
    )


def test_bad_arguments_name_the_value(tmp_path):
    with pytest.raises(ValueError, match="nope"):
        backbones.build_backbone("nope", 64, weights=None)
    missing = str(tmp_path / "missing.weights.h5")
    with pytest.raises(FileNotFoundError, match="missing.weights.h5"):
        backbones.build_backbone("small_cnn", 64, weights=missing)
    with pytest.raises(ValueError, match="mode"):
        backbones.ImagePreprocessing("bgr")


def test_local_weights_file_is_loaded(tmp_path):
    a = backbones.build_backbone("small_cnn", 32, weights=None)
    path = str(tmp_path / "small.weights.h5")
    a.get_layer("small_cnn_features").save_weights(path)
    b = backbones.build_backbone("small_cnn", 32, weights=path)
    x = np.random.default_rng(1).uniform(0, 255, (1, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(a(x)), np.asarray(b(x)), atol=1e-5)
