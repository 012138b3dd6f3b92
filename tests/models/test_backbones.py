"""backbones.py: the BACKBONES table, WSOL surgery, in-graph preprocessing."""

import keras
import numpy as np
import pytest

from layer_test_util import run_layer_test
from wsol_keras.models import backbones
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


@pytest.mark.parametrize(
    "name, kwargs, side, layer",
    [
        ("vgg16", {}, 14, "block5_conv3"),
        ("vgg16", {"vgg_large_feature_map": True}, 28, "block5_conv3"),
        ("resnet50", {}, 7, "conv5_block3_out"),
        ("resnet50", {"resnet_last_stride": 1}, 14, "conv5_block3_out"),
        ("inception_v3", {}, 12, "mixed7"),
        ("mobilenet_v2", {}, 7, "out_relu"),
        ("small_cnn", {}, 56, "stage3_relu3"),
    ],
)
def test_readme_table_rows_at_224(name, kwargs, side, layer):
    # 224 over each cut's total stride: VGG16 four 2x2 pools (16; 8 with pool4
    # at stride 1), ResNet50 32 (16 with conv5 at stride 1), InceptionV3 to
    # mixed7 (valid convs / pools: 12), MobileNetV2 32, small_cnn two pools (4).
    model = backbones.build_backbone(name, 224, weights=None, **kwargs)
    assert tuple(model.output.shape[1:3]) == (side, side)
    assert model.layers[-1].layers[-1].name == layer


def test_vgg16_is_cut_after_conv5_3_without_pool5():
    model = backbones.build_backbone("vgg16", 224, weights=None)
    assert model.output.shape[1:] == (14, 14, 512)


def test_resnet50_last_stride_one_doubles_the_final_map():
    plain = backbones.build_backbone("resnet50", 64, weights=None)
    s1 = backbones.build_backbone("resnet50", 64, weights=None, resnet_last_stride=1)
    assert plain.output.shape[1] == 2 and s1.output.shape[1] == 4


def test_resnet50_large_feature_map_keeps_conv4_and_conv5_at_stride_one():
    # wsolevaluation wsol/resnet.py ResNetCam(large_feature_map=True): layer3
    # and layer4 at stride 1, so the maps are at stride 8: 28x28 at 224, 8x8 at
    # 64 (vs 4x4 with layer4 alone at stride 1, 2x2 for the plain ResNet50).
    big = backbones.build_backbone(
        "resnet50", 224, weights=None, resnet_last_stride=1, resnet_large_feature_map=True
    )
    assert tuple(big.output.shape[1:]) == (28, 28, 2048)
    small = backbones.build_backbone(
        "resnet50", 64, weights=None, resnet_last_stride=1, resnet_large_feature_map=True
    )
    assert small(np.zeros((1, 64, 64, 3), np.float32)).shape == (1, 8, 8, 2048)
    # DANet-style levels: conv3 (stride 8), conv4 and conv5 all 8x8 now.
    levels = backbones.build_backbone(
        "resnet50", 64, weights=None, levels=True, resnet_last_stride=1,
        resnet_large_feature_map=True,
    )
    assert [o.shape[1] for o in levels.outputs] == [8, 8, 8]


def test_resnet50_stride_surgery_moves_only_the_v1_strides_and_keeps_weights():
    net = keras.applications.ResNet50(
        include_top=False, weights=None, input_shape=(64, 64, 3)
    )
    clone = backbones._resnet_stride_one(net, ("conv4", "conv5"))

    def strides(model):
        return {
            layer.name: tuple(layer.get_config()["strides"])
            for layer in model.layers
            if "strides" in layer.get_config()
        }

    before, after = strides(net), strides(clone)
    # Keras' ResNet50 is v1: the stride sits on the first block's 1x1 reducing
    # conv and 1x1 shortcut of conv3/4/5 (plus the stem), never on a 3x3.
    assert {n for n, s in before.items() if s == (2, 2)} == {
        "conv1_conv", "pool1_pool",
        "conv3_block1_0_conv", "conv3_block1_1_conv",
        "conv4_block1_0_conv", "conv4_block1_1_conv",
        "conv5_block1_0_conv", "conv5_block1_1_conv",
    }
    assert {n for n, s in after.items() if s == (2, 2)} == {
        "conv1_conv", "pool1_pool", "conv3_block1_0_conv", "conv3_block1_1_conv"
    }
    # Same variables, and each layer keeps its (random) weights by name.
    assert len(clone.weights) == len(net.weights)
    weighted = [layer.name for layer in net.layers if layer.weights]
    assert [layer.name for layer in clone.layers if layer.weights] == weighted
    assert len(weighted) == 53 + 53  # 53 convs, each with its BatchNorm
    for name in weighted:
        pairs = zip(net.get_layer(name).get_weights(), clone.get_layer(name).get_weights())
        for a, b in pairs:
            np.testing.assert_array_equal(a, b)


def test_resnet50_large_feature_map_bad_combinations_raise():
    with pytest.raises(ValueError, match="resnet_last_stride=1"):
        backbones.build_backbone(
            "resnet50", 64, weights=None, resnet_large_feature_map=True
        )
    with pytest.raises(ValueError, match="resnet50 only, not 'vgg16'"):
        backbones.build_backbone(
            "vgg16", 64, weights=None, resnet_large_feature_map=True
        )


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
