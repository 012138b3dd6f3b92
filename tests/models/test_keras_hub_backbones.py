"""keras_hub:<preset or class> backbones: WSOL surgery, patch-token maps, every
method on top, local preset directories, errors.  Random weights, tiny inputs,
no downloads (the classes are built from small configs)."""

import importlib
import json
import sys

import keras
import numpy as np
import pytest

keras_hub = pytest.importorskip(
    "keras_hub", reason="keras-hub not installed (pip install 'wsol_keras[keras_hub]')"
)

from wsol_keras.layers.patch_tokens import PatchTokensToMap  # noqa: E402
from wsol_keras.models import backbones  # noqa: E402
from wsol_keras.models import keras_hub_backbones as khb  # noqa: E402
from wsol_keras.models.registry import build_model  # noqa: E402

# A 3-stack basic-block ResNet: stem stride 4 (conv 2, pool 2), stacks at
# strides 1, 2, 2: stride 16 plain, 8 with the last stack at stride 1.
TINY_RESNET = {
    "input_conv_filters": [64],
    "input_conv_kernel_sizes": [7],
    "stackwise_num_filters": [64, 16, 16],
    "stackwise_num_blocks": [1, 1, 1],
    "stackwise_num_strides": [1, 2, 2],
    "block_type": "basic_block",
}
TINY_VIT = {"patch_size": 8, "num_layers": 1, "num_heads": 2, "hidden_dim": 16, "mlp_dim": 32}
TINY_DEIT = {**TINY_VIT, "intermediate_dim": 32}
del TINY_DEIT["mlp_dim"]
# Tan & Le, "EfficientNet" (ICML 2019), Table 1 (B0): stem stride 2, stage
# strides 1, 2, 2, 2, 1, 2, 1 -> stride 32.
EFFICIENTNET_B0 = {
    "stackwise_width_coefficients": [1.0] * 7,
    "stackwise_depth_coefficients": [1.0] * 7,
    "stackwise_kernel_sizes": [3, 3, 5, 3, 5, 5, 3],
    "stackwise_num_repeats": [1, 2, 2, 3, 3, 4, 1],
    "stackwise_input_filters": [32, 16, 24, 40, 80, 112, 192],
    "stackwise_output_filters": [16, 24, 40, 80, 112, 192, 320],
    "stackwise_expansion_ratios": [1, 6, 6, 6, 6, 6, 6],
    "stackwise_squeeze_and_excite_ratios": [0.25] * 7,
    "stackwise_strides": [1, 2, 2, 2, 1, 2, 1],
    "stackwise_block_types": ["v1"] * 7,
}
# He et al., "Deep Residual Learning" (CVPR 2016), Table 1 (18-layer): stride 32.
RESNET_18 = {**TINY_RESNET, "stackwise_num_filters": [64, 128, 256, 512],
             "stackwise_num_blocks": [2, 2, 2, 2], "stackwise_num_strides": [1, 2, 2, 2]}
C = 4


def hub(cls_name, size, args, **kwargs):
    return backbones.build_backbone(
        f"keras_hub:{cls_name}", size, weights=None, keras_hub_args=args, **kwargs
    )


@pytest.mark.parametrize(
    "cls_name, args, plain, surgery, layer",
    [
        ("ResNetBackbone", RESNET_18, 7, 14, "stack3_block1_out"),
        ("EfficientNetBackbone", EFFICIENTNET_B0, 7, 14, "top_activation"),
        ("DenseNetBackbone", {"stackwise_num_repeats": [6, 12, 24, 16]}, 7, 7, "relu"),
        ("ViTBackbone", {**TINY_VIT, "patch_size": 16}, 14, 14, "patch_token_map"),
        ("DeiTBackbone", {**TINY_DEIT, "patch_size": 16}, 14, 14, "patch_token_map"),
    ],
)
def test_readme_table_rows_at_224(cls_name, args, plain, surgery, layer):
    # The README's backbone table: 224 / total stride (32 for the CNNs, 16
    # once the last stride-2 stage is at stride 1; DenseNet has no stride
    # field; ViT/DeiT: 224 / patch 16), and the localization layer.
    for last_stride, side in ((2, plain), (1, surgery)):
        model = hub(cls_name, 224, args, keras_hub_last_stride=last_stride)
        assert tuple(model.output.shape[1:3]) == (side, side), (cls_name, last_stride)
        assert model.layers[-1].layers[-1].name == layer


def test_resnet_surgery_moves_only_the_last_stride_and_keeps_every_weight():
    net = keras_hub.models.ResNetBackbone(**TINY_RESNET)
    clone = khb._last_stride_one(net, "stackwise_num_strides")
    assert clone.get_config()["stackwise_num_strides"] == [1, 2, 1]
    assert len(clone.weights) == len(net.weights)
    for a, b in zip(net.get_weights(), clone.get_weights()):
        np.testing.assert_array_equal(a, b)
    x = np.random.default_rng(0).uniform(size=(1, 64, 64, 3)).astype(np.float32)
    assert net(x).shape == (1, 4, 4, 16) and clone(x).shape == (1, 8, 8, 16)
    # Stages before the changed one compute the same values.
    p3 = [keras.Model(m.input, m.pyramid_outputs["P3"])(x) for m in (net, clone)]
    np.testing.assert_allclose(p3[0], p3[1], rtol=1e-5, atol=1e-5)


def test_patch_tokens_to_map_drops_leading_tokens_row_major():
    tokens = np.arange(2 * 8 * 3, dtype=np.float32).reshape(2, 8, 3)  # 2 lead + 2x3
    out = np.asarray(PatchTokensToMap((2, 3))(tokens))
    assert out.shape == (2, 2, 3, 3)
    for r in range(2):
        for c in range(3):
            np.testing.assert_array_equal(out[:, r, c], tokens[:, 2 + r * 3 + c])


def test_vit_patch_map_puts_each_patch_at_its_image_position():
    # No transformer layer, no position embedding: token (r, c) reads only
    # image patch (r, c), so a lone bright patch must light map cell (r, c).
    net = keras_hub.models.ViTBackbone(image_shape=(32, 32, 3), **{**TINY_VIT, "num_layers": 0})
    pos = net.get_layer("vit_patching_and_embedding").position_embedding
    pos.embeddings.assign(np.zeros(pos.embeddings.shape, np.float32))
    extractor = keras.Model(net.input, PatchTokensToMap((4, 4))(net.output))
    image = np.zeros((1, 32, 32, 3), np.float32)
    image[0, 8:16, 24:32] = 1.0  # patch row 1, column 3
    maps = np.asarray(extractor(image))[0]
    change = np.abs(maps - maps[0, 0]).sum(-1)
    assert np.unravel_index(np.argmax(change), change.shape) == (1, 3)
    assert np.count_nonzero(change > 1e-5) == 1


@pytest.mark.parametrize("method", ["cam", "acol", "spn", "has", "cutmix", "adl", "danet"])
def test_every_method_runs_on_a_keras_hub_resnet(method):
    module = importlib.import_module(f"wsol_keras.configs.synthetic_{method}")
    config = module.get_config("smoke")
    config.data.image_size = 32
    config.model.backbone = "keras_hub:ResNetBackbone"
    config.model.keras_hub_args = json.dumps(TINY_RESNET)
    if method == "adl":
        config.method.adl_layers = ("stack1_block0_out", "stack2_block0_out")
    info = {"num_classes": C, "class_names": list("abcd"), "image_size": 32,
            "hierarchy_sizes": [2, 1]}
    model = build_model(config, info)
    images = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype(np.float32)
    out = model(images, training=False)
    assert out["logits"].shape == (2, C)
    cams = np.asarray(out["cams"])
    assert np.all(np.isfinite(cams))
    # Stride 8 after the surgery: 4x4 maps at 32; DANet's fused map is at its
    # shallowest level (P2, stride 4: 8x8).
    side = 8 if method == "danet" else 4
    assert cams.shape == (2, side, side, C)


@pytest.mark.parametrize("cls_name, args", [("ViTBackbone", TINY_VIT), ("DeiTBackbone", TINY_DEIT)])
def test_cam_on_transformer_patch_tokens(cls_name, args):
    config = importlib.import_module("wsol_keras.configs.synthetic_cam").get_config("smoke")
    config.data.image_size = 32
    config.model.backbone = f"keras_hub:{cls_name}"
    config.model.keras_hub_args = json.dumps(args)
    model = build_model(config, {"num_classes": C, "class_names": list("abcd"), "image_size": 32})
    out = model(np.zeros((2, 32, 32, 3), np.float32), training=False)
    assert out["cams"].shape == (2, 4, 4, C)  # 32 / patch 8


def test_local_preset_directory_round_trip(tmp_path):
    net = keras_hub.models.ResNetBackbone(**TINY_RESNET)
    net.save_to_preset(str(tmp_path))
    keras_hub.layers.ImageConverter(scale=1 / 255.0).save_to_preset(str(tmp_path))
    x = np.random.default_rng(1).uniform(0, 255, (2, 64, 64, 3)).astype(np.float32)
    name = f"keras_hub:{tmp_path}"
    loaded = backbones.build_backbone(name, 64, weights="imagenet", keras_hub_last_stride=2)
    # The preset's weights and its converter's scale (x / 255) in the graph.
    np.testing.assert_allclose(loaded(x), net(x / 255.0), rtol=1e-4, atol=1e-4)
    random = backbones.build_backbone(name, 64, weights=None, keras_hub_last_stride=2)
    assert random.output.shape == loaded.output.shape
    assert not np.allclose(random(x), loaded(x))
    surgery = backbones.build_backbone(name, 64, weights="imagenet")
    assert surgery(x).shape == (2, 8, 8, 16)


def test_preset_without_converter_gets_imagenet_mean_std(tmp_path):
    net = keras_hub.models.ResNetBackbone(**TINY_RESNET)
    net.save_to_preset(str(tmp_path))
    model = backbones.build_backbone(f"keras_hub:{tmp_path}", 32, weights="imagenet",
                                     keras_hub_last_stride=2)
    x = np.full((1, 32, 32, 3), 127.0, np.float32)
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    np.testing.assert_allclose(model(x), net((x / 255.0 - mean) / std), rtol=1e-4, atol=1e-4)


def test_errors_name_the_fix(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="resnet_50_imagenet"):  # lists known presets
        backbones.build_backbone("keras_hub:not_a_preset", 32, weights=None)
    with pytest.raises(ValueError, match="supported"):
        backbones.build_backbone("keras_hub:BertBackbone", 32, weights=None)
    with pytest.raises(ValueError, match="no pretrained weights"):
        backbones.build_backbone("keras_hub:ResNetBackbone", 32, weights="imagenet",
                                 keras_hub_args=TINY_RESNET)
    with pytest.raises(ValueError, match="keras_hub_args"):
        backbones.build_backbone("keras_hub:ResNetBackbone", 32, weights=None)
    with pytest.raises(ValueError, match="keras_hub_last_stride"):
        hub("ResNetBackbone", 32, TINY_RESNET, resnet_last_stride=1)
    with pytest.raises(ValueError, match="data.image_size=32"):
        khb.build_keras_hub_backbone(
            "keras_hub:ViTBackbone", (64, 64), args={**TINY_VIT, "image_shape": (32, 32, 3)}
        )
    with pytest.raises(ValueError, match="DANet"):
        hub("ViTBackbone", 32, TINY_VIT, levels=True)
    with pytest.raises(FileNotFoundError, match="config.json"):
        backbones.build_backbone(f"keras_hub:{tmp_path}", 32, weights=None)
    monkeypatch.setitem(sys.modules, "keras_hub", None)  # as if not installed
    with pytest.raises(ImportError, match="pip install"):
        backbones.build_backbone("keras_hub:ResNetBackbone", 32, weights=None)


@pytest.mark.parametrize(
    "backbone, expected",
    [
        ("keras_hub:ResNetBackbone", "cam_keras_hub_ResNetBackbone"),
        ("keras_hub:/data/presets/resnet_50/", "cam_keras_hub_resnet_50"),
        ("vgg16", "cam_vgg16"),
    ],
)
def test_default_export_name_is_one_folder_name(backbone, expected):
    from wsol_keras.export import saved_model_lib  # pylint: disable=g-import-not-at-top

    config = importlib.import_module("wsol_keras.configs.synthetic_cam").get_config()
    config.model.backbone = backbone
    name = saved_model_lib.default_model_name(config)
    assert name == expected
    assert saved_model_lib.check_model_name(name) == name
