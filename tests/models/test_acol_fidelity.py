"""ACoL's released feature path (xiaomengyc/ACoL models/vgg/vgg_v1.py,
clovaai/wsolevaluation wsol/vgg.py VggAcol) against numpy copies of torch's pools."""

import keras
import numpy as np
import pytest

from wsol_keras.configs import synthetic_acol
from wsol_keras.models.registry import build_model
from wsol_keras.models.backbones import build_backbone
from wsol_keras.models import acol
from wsol_keras.layers.padded_max_pool import PaddedMaxPooling2D


def torch_maxpool3_s1_p1(x):
    """nn.MaxPool2d(3, stride=1, padding=1): padding never wins (-inf)."""
    p = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=-np.inf)
    h, w = x.shape[1:3]
    return np.stack(
        [np.stack([p[:, i : i + 3, j : j + 3].max(axis=(1, 2)) for j in range(w)], 1) for i in range(h)],
        1,
    )


def torch_avgpool3_s1_p1(x):
    """F.avg_pool2d(3, stride=1, padding=1), count_include_pad=True: always / 9."""
    p = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    h, w = x.shape[1:3]
    return np.stack(
        [np.stack([p[:, i : i + 3, j : j + 3].sum(axis=(1, 2)) / 9.0 for j in range(w)], 1) for i in range(h)],
        1,
    )


def small_model(**method):
    config = synthetic_acol.get_config("smoke")
    config.data.image_size = 32
    for k, v in method.items():
        config.method[k] = v
    return build_model(config, {"num_classes": 5, "image_size": 32})


def test_pooled_features_match_released_max_then_avg_pool():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 5, 6, 3)).astype(np.float32)
    got = np.asarray(small_model().pooled_features(x))
    expected = torch_avgpool3_s1_p1(torch_maxpool3_s1_p1(x))
    # Corner of the avg pool: 4 valid values / 9 (Keras "same" would divide by 4).
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_feature_pools_can_be_switched_off():
    x = np.random.default_rng(1).normal(size=(1, 4, 4, 2)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(small_model(feature_pools=False).pooled_features(x)), x)


def test_heads_use_xavier_uniform_as_released():
    model = small_model()
    model(np.zeros((1, 32, 32, 3), np.float32))
    for head in (model.head_a, model.head_b):
        kernels = [v for v in head.trainable_variables if v.path.endswith("kernel")]
        biases = [v for v in head.trainable_variables if v.path.endswith("bias")]
        # synthetic config: one 3x3 conv + the 1x1 classifier
        assert len(kernels) == 1 + len(synthetic_acol.get_config().method.conv_filters)
        for k in kernels:
            kh, kw, cin, cout = k.shape
            limit = np.sqrt(6.0 / (kh * kw * (cin + cout)))  # torch xavier_uniform_
            w = np.asarray(k)
            assert np.abs(w).max() <= limit + 1e-7
            assert np.abs(w).max() > 0.8 * limit  # uniform fills its range
        for b in biases:
            assert not np.asarray(b).any()


def test_large_feature_map_keeps_28x28_at_224_scale():
    # At 64 px: 14x14 variant -> 4x4, released 'D1' (pool4 3x3 stride 1) -> 8x8.
    plain = build_backbone("vgg16", 64, weights=None)
    large = build_backbone("vgg16", 64, weights=None, vgg_large_feature_map=True)
    x = np.random.default_rng(2).uniform(0, 255, (1, 64, 64, 3)).astype(np.float32)
    assert plain(x).shape[1:3] == (4, 4)
    assert large(x).shape[1:3] == (8, 8)
    assert len(large.weights) == len(plain.weights)


def _vgg_pool_io(backbone, block):
    """(input, output) of VGG16's block{block}_pool inside a built backbone."""
    features = backbone.get_layer("vgg16_features")
    pool = features.get_layer(f"block{block}_pool")
    conv = features.get_layer(f"block{block}_conv{2 if block < 3 else 3}")
    probe = keras.Model(features.inputs, [conv.output, pool.output])
    return probe, pool


def test_released_stride_two_pools_are_torchs_maxpool_3_2_1():
    # vgg_v1.py cfg 'D1' pools 1-3 'M' and wsolevaluation wsol/vgg.py 'acol'
    # '14x14' pools 1-4 'M1': nn.MaxPool2d(kernel_size=3, stride=2, padding=1).
    from layers.test_padded_max_pool import torch_max_pool

    net = build_backbone("vgg16", 64, weights=None, vgg_released_pools=True)
    x = np.random.default_rng(3).normal(size=(1, 64, 64, 3)).astype(np.float32)
    for block in (1, 2, 3, 4):
        probe, _ = _vgg_pool_io(net, block)
        conv_out, pool_out = (np.asarray(t) for t in probe(x))
        np.testing.assert_array_equal(pool_out, torch_max_pool(conv_out, 3, 2, 1))


def test_large_feature_map_with_released_pools_is_cfg_d1():
    # 'D1': pools 1-3 'M' (3, 2, 1), pool4 'N' = nn.MaxPool2d(3, stride=1, padding=1).
    from layers.test_padded_max_pool import torch_max_pool

    net = build_backbone(
        "vgg16", 64, weights=None, vgg_released_pools=True, vgg_large_feature_map=True
    )
    x = np.random.default_rng(4).normal(size=(1, 64, 64, 3)).astype(np.float32)
    probe, _ = _vgg_pool_io(net, 3)
    conv_out, pool_out = (np.asarray(t) for t in probe(x))
    np.testing.assert_array_equal(pool_out, torch_max_pool(conv_out, 3, 2, 1))
    probe, _ = _vgg_pool_io(net, 4)
    conv_out, pool_out = (np.asarray(t) for t in probe(x))
    np.testing.assert_array_equal(pool_out, torch_max_pool(conv_out, 3, 1, 1))


@pytest.mark.parametrize(
    "size, released, large, side",
    [
        (64, False, False, 4),
        (64, True, False, 4),
        (64, True, True, 8),
        # 67 -> 34 -> 17 -> 9 -> 5 with torch's pools 1-4 (wsolevaluation 'acol' 14x14).
        (67, True, False, 5),
        # Odd input: torch's pools give ceil(n / 2) (67 -> 34 -> 17 -> 9 -> 4),
        # Keras' 2x2 valid pools floor(n / 2) (67 -> 33 -> 16 -> 8 -> 4).
        (67, True, True, 9),
        (67, False, True, 8),
    ],
)
def test_feature_map_sides_with_released_pools(size, released, large, side):
    net = build_backbone(
        "vgg16",
        size,
        weights=None,
        vgg_released_pools=released,
        vgg_large_feature_map=large,
    )
    assert tuple(net.output.shape[1:3]) == (side, side)


def test_released_pools_keep_every_pretrained_weight_by_layer_name():
    # The clone swaps weightless pools only: each conv keeps its kernel/bias.
    from wsol_keras.models.backbones import _vgg_released_pools

    base = keras.applications.VGG16(include_top=False, weights=None, input_shape=(32, 32, 3))
    clone = _vgg_released_pools(base, torch_pools=True, pool4_stride_one=True)
    convs = [l for l in base.layers if l.weights]
    assert len(convs) == 13
    for layer in convs:
        for a, b in zip(layer.get_weights(), clone.get_layer(layer.name).get_weights()):
            np.testing.assert_array_equal(a, b)
    assert isinstance(clone.get_layer("block2_pool"), PaddedMaxPooling2D)


def test_acol_cub_config_uses_the_released_pools_and_other_backbones_refuse_them():
    from wsol_keras.configs import base, cub_vgg16_acol

    assert cub_vgg16_acol.get_config().model.vgg_released_pools is True
    assert base.base_config().model.vgg_released_pools is False
    with pytest.raises(ValueError, match="vgg_released_pools applies to vgg16 only"):
        build_backbone("small_cnn", 32, weights=None, vgg_released_pools=True)
