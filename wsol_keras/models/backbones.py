"""Backbone feature extractors with the WSOL surgery the papers use.

One explicit table, `BACKBONES`, maps a name to how to build the
`keras.applications` network, where to cut it, how to preprocess its input and
which three depths multi-level heads (DANet) read.  Every backbone takes float
images in [0, 255] (RGB); the backbone's own normalization lives in the graph
(`ImagePreprocessing`), so exported models take raw pixels.

Surgery (as in ACoL Sec. 3.1 / wsolevaluation):
    * vgg16: cut after conv5_3 (`block5_conv3`), no pool5: 14x14 maps at 224.
        Released ACoL pools as options: `vgg_released_pools` (stride-2 pools as
        torch's 3x3 stride-2 padding-1) and `vgg_large_feature_map` (pool4 3x3
        stride 1: 28x28 at 224).
    * resnet50: full conv stages; `resnet_last_stride=1` makes the last stage
        keep 14x14 at 224 (stride-2 convs of conv5_block1 set to stride 1);
        `resnet_large_feature_map` also conv4 (28x28 at 224, wsolevaluation's
        `--large_feature_map`); see `_resnet_stride_one`.
    * inception_v3: cut after `mixed7`, the Keras block matching torchvision's
        Mixed_6e (17x17 at 299).
    * mobilenet_v2: up to `out_relu`.
    * small_cnn: a 7-conv network trained from scratch, for CPU runs and tests.
"""

import dataclasses
import os

import keras
from keras import layers, ops

from wsol_keras.layers.padded_max_pool import PaddedMaxPooling2D
from wsol_keras.models import pretrained
from wsol_keras.models.pretrained import is_download_failure, normalize_weights  # noqa: F401
from wsol_keras.models.keras_hub_backbones import build_keras_hub_backbone, is_keras_hub


# config.model's backbone-surgery fields and their defaults (the plain
# architectures); `configs.base` starts from them and a config.json written
# before a field existed means its default.
SURGERY_DEFAULTS = {
    "resnet_last_stride": 2,
    "resnet_large_feature_map": False,
    "vgg_large_feature_map": False,
    "vgg_released_pools": False,
    "keras_hub_last_stride": 1,  # keras_hub: backbones only (WSOL surgery on)
}


@keras.saving.register_keras_serializable(package="wsol_keras")
class ImagePreprocessing(layers.Layer):
    """Maps [0, 255] RGB floats to a backbone's expected input range.

    Args:
        mode: "caffe" (RGB->BGR, ImageNet mean subtraction: VGG16, ResNet50),
            "tf" ([-1, 1]: InceptionV3, MobileNetV2), "unit" ([0, 1]) or "none".
    """

    _CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)

    def __init__(self, mode="caffe", **kwargs):
        super().__init__(**kwargs)
        if mode not in ("caffe", "tf", "unit", "none"):
            raise ValueError(
                f"ImagePreprocessing: unknown mode {mode!r}; "
                "expected caffe, tf, unit or none."
            )
        self.mode = mode

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype)
        if self.mode == "caffe":
            x = x[..., ::-1] - ops.convert_to_tensor(
                self._CAFFE_MEAN_BGR, dtype=self.compute_dtype
            )
        elif self.mode == "tf":
            x = x / 127.5 - 1.0
        elif self.mode == "unit":
            x = x / 255.0
        return x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


@dataclasses.dataclass(frozen=True)
class BackboneSpec:
    """How to build and cut one backbone.

    Attributes:
        constructor: callable(input_shape, weights) -> keras.Model without top.
        feature_layer: name of the last layer kept (the CAM feature map).
        levels: three layer names, shallow to deep, for multi-level heads (DANet).
        preprocessing: ImagePreprocessing mode.
        default_image_size: the input size the papers use.
    """

    constructor: object
    feature_layer: str
    levels: tuple
    preprocessing: str
    default_image_size: int


def _app(fn):
    def build(input_shape, weights):
        return fn(include_top=False, weights=weights, input_shape=input_shape)

    return build


# BN momentum of the from-scratch backbone: PyTorch's default (0.1 there, as pycls
# and torchvision train ResNets), not Keras's 0.99.  Moving statistics start at
# mean 0 / variance 1, while the stem's BN inputs (an unbiased conv on [0, 1]
# pixels) have variances near 0.003: with 0.99 the initial value decays as
# 0.99**steps and still dominates after 12 epochs of a 1,200-image set (444 steps),
# leaving the inference-mode model at chance; 0.9 forgets it in ~60 steps.
SMALL_CNN_BN_MOMENTUM = 0.9


def _small_cnn(input_shape, weights):
    """Seven 3x3 conv layers with batch norm; two 2x2 pools (stride 4 overall)."""
    inputs = keras.Input(input_shape)
    x = inputs
    plan = [("stage1", (32, 32)), ("stage2", (64, 64)), ("stage3", (128, 128, 128))]
    for stage, widths in plan:
        for i, width in enumerate(widths):
            x = layers.Conv2D(
                width, 3, padding="same", use_bias=False, name=f"{stage}_conv{i + 1}"
            )(x)
            x = layers.BatchNormalization(
                momentum=SMALL_CNN_BN_MOMENTUM, name=f"{stage}_bn{i + 1}"
            )(x)
            x = layers.ReLU(name=f"{stage}_relu{i + 1}")(x)
        if stage != "stage3":
            x = layers.MaxPooling2D(2, name=f"{stage}_pool")(x)
    model = keras.Model(inputs, x, name="small_cnn")
    if weights not in (None, "imagenet"):
        model.load_weights(weights)
    elif weights == "imagenet":
        raise ValueError(
            "backbone 'small_cnn' has no ImageNet weights; use "
            "weights=None or a local weights file."
        )
    return model


BACKBONES = {
    "vgg16": BackboneSpec(
        _app(keras.applications.VGG16),
        "block5_conv3",
        ("block3_pool", "block4_pool", "block5_conv3"),
        "caffe",
        224,
    ),
    "resnet50": BackboneSpec(
        _app(keras.applications.ResNet50),
        "conv5_block3_out",
        ("conv3_block4_out", "conv4_block6_out", "conv5_block3_out"),
        "caffe",
        224,
    ),
    "inception_v3": BackboneSpec(
        _app(keras.applications.InceptionV3),
        "mixed7",
        ("mixed2", "mixed5", "mixed7"),
        "tf",
        299,
    ),
    "mobilenet_v2": BackboneSpec(
        _app(keras.applications.MobileNetV2),
        "out_relu",
        ("block_5_add", "block_12_add", "out_relu"),
        "tf",
        224,
    ),
    "small_cnn": BackboneSpec(
        _small_cnn,
        "stage3_relu3",
        ("stage1_pool", "stage2_pool", "stage3_relu3"),
        "unit",
        64,
    ),
}


# The stride-2 convs of the first block of each Keras ResNet50 stage that the
# WSOL surgery sets to stride 1.  Keras builds ResNet v1 (keras.applications
# resnet.py `block1`): the stride sits on the 1x1 reducing conv (`_1_conv`)
# and on the 1x1 projection shortcut (`_0_conv`); the 3x3 (`_2_conv`) is
# stride 1.  conv4 is torchvision's `layer3`, conv5 its `layer4`.
_RESNET_STRIDED_CONVS = {
    "conv4": ("conv4_block1_0_conv", "conv4_block1_1_conv"),
    "conv5": ("conv5_block1_0_conv", "conv5_block1_1_conv"),
}


def _resnet_stride_one(model, stages=("conv5",)):
    """Clones a Keras ResNet50 with `stages` at stride 1 (weights kept).

    `stages`: keys of `_RESNET_STRIDED_CONVS`.  ("conv5",) is the usual WSOL
    last-stride-1 surgery (14x14 at 224); ("conv4", "conv5") is
    clovaai/wsolevaluation wsol/resnet.py `ResNetCam` with
    `large_feature_map=True` (`stride_l3 = 1`; `layer4` is always built with
    `stride=1`): 28x28 at 224.

    Where the strides differ from wsolevaluation: its `Bottleneck` is
    torchvision's v1.5 block (the stride on the 3x3 `conv2`, the 1x1
    `downsample` at the same stride), Keras' is v1 (the stride on the 1x1
    reducing conv and the 1x1 shortcut).  With a stage at stride 1 its block is
    the same in both; the map sizes match (56 -> 28 in conv3 / layer2, then
    stride 1).  The stride-2 stage left, conv3 (`layer2`), keeps Keras' v1
    placement: its 1x1 conv reads every other pixel where torch's 3x3 reads all
    of them, and the pretrained weights are Keras' (Caffe-converted v1 with
    conv biases), not torchvision's resnet50-19c8e357.  Only the strides of
    convs change, so every layer keeps its weights by name.
    """
    strided = {n for stage in stages for n in _RESNET_STRIDED_CONVS[stage]}

    def clone(layer):
        config = layer.get_config()
        if layer.name in strided:
            config["strides"] = (1, 1)
        return layer.__class__.from_config(config)

    clone_model = keras.models.clone_model(model, clone_function=clone)
    clone_model.set_weights(model.get_weights())
    return clone_model


def _vgg_released_pools(model, torch_pools=False, pool4_stride_one=False):
    """Clones a Keras VGG16 with the released ACoL pools (weights kept).

    `torch_pools`: every stride-2 pool (1-4) becomes
    `nn.MaxPool2d(3, stride=2, padding=1)` instead of Keras' 2x2 pool
    (`PaddedMaxPooling2D`: torch's symmetric -inf padding; Keras' "same" pads
    an even axis 0 / 1 and shifts every window): xiaomengyc/ACoL
    models/vgg/vgg_v1.py cfg 'D1' pools 1-3 ('M'), clovaai/wsolevaluation
    wsol/vgg.py 'acol' '14x14' pools 1-4 ('M1').  `pool4_stride_one`: pool4 is
    `nn.MaxPool2d(3, stride=1, padding=1)` (cfg 'D1' 'N', wsolevaluation
    'acol' '28x28' 'M2': 28x28 maps at 224; for stride 1 "same" pads 1 / 1
    like torch).  Only weightless pools change, so every conv keeps its
    weights by name.
    """

    def clone(layer):
        if pool4_stride_one and layer.name == "block4_pool":
            return layers.MaxPooling2D(3, strides=1, padding="same", name=layer.name)
        if torch_pools and layer.name in _VGG_STRIDE_TWO_POOLS:
            return PaddedMaxPooling2D(3, strides=2, padding=1, name=layer.name)
        return layer.__class__.from_config(layer.get_config())

    clone_model = keras.models.clone_model(model, clone_function=clone)
    clone_model.set_weights(model.get_weights())
    return clone_model


_VGG_STRIDE_TWO_POOLS = ("block1_pool", "block2_pool", "block3_pool", "block4_pool")


def build_backbone(
    name,
    image_size,
    weights="imagenet",
    levels=False,
    resnet_last_stride=2,
    name_prefix="backbone",
    resnet_large_feature_map=False,
    vgg_large_feature_map=False,
    vgg_released_pools=False,
    keras_hub_last_stride=1,
    keras_hub_args=None,
):
    """Builds a feature extractor from `BACKBONES` or keras-hub.

    Args:
        name: a key of `BACKBONES`, or "keras_hub:<preset, preset directory or
            class>" (`wsol_keras.models.keras_hub_backbones`).
        image_size: int or (height, width) of the input.
        weights: "imagenet", "synthetic" (the shipped weights pretrained on
            the procedural set, `wsol_keras.models.pretrained`), None (random
            init; also "none", "None", "") or a path to a local weights file
            (refused when the manifest beside it names another backbone).
        levels: if True the model returns the three `spec.levels` feature maps
            (shallow to deep); otherwise the single CAM feature map.
        resnet_last_stride: 1 or 2; 1 keeps 14x14 maps at 224 for resnet50.
        name_prefix: name of the returned model.
        resnet_large_feature_map: resnet50 only, with `resnet_last_stride=1`:
            conv4 (torch `layer3`) at stride 1 too, 28x28 maps at 224
            (wsolevaluation's `--large_feature_map TRUE` for ResNet50).
        vgg_large_feature_map: vgg16 only: pool4 becomes a 3x3 stride-1 max
            pool, so conv5_3 keeps 28x28 at 224 (released ACoL CUB model).
        vgg_released_pools: vgg16 only: the stride-2 pools (1-3, and 4 unless
            `vgg_large_feature_map`) become torch's `MaxPool2d(3, stride=2,
            padding=1)` (released ACoL VGG16 cfg 'D1'; wsolevaluation's ACoL).
        keras_hub_last_stride, keras_hub_args: keras_hub backbones only (see
            `keras_hub_backbones.build_keras_hub_backbone`).

    Returns:
        A `keras.Model` mapping float [B, H, W, 3] in [0, 255] to the features.
    """
    size = (
        (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    )
    if is_keras_hub(name):
        other = (resnet_last_stride, resnet_large_feature_map, vgg_large_feature_map)
        return build_keras_hub_backbone(
            name, size, normalize_weights(weights), levels, keras_hub_last_stride,
            keras_hub_args, name_prefix, (*other, vgg_released_pools) != (2, 0, 0, 0),
        )
    if name not in BACKBONES:
        raise ValueError(
            f"unknown backbone {name!r}; choose one of {sorted(BACKBONES)} "
            "or keras_hub:<preset, preset directory or class>"
        )
    weights = normalize_weights(weights)
    if (
        isinstance(weights, str)
        and weights not in ("imagenet", "synthetic")
        and not os.path.exists(weights)
    ):
        raise FileNotFoundError(f"backbone weights file not found: {weights}")
    weights = pretrained.resolve_weights(name, weights)
    spec = BACKBONES[name]
    try:
        net = spec.constructor((*size, 3), weights)
    except Exception as error:  # pylint: disable=broad-except
        if weights == "imagenet" and is_download_failure(error):
            raise OSError(
                f"could not download the ImageNet weights of backbone {name!r} "
                f"({type(error).__name__}: {error}). Offline, pass a local "
                "weights file (--config.model.weights=/path/to/weights.h5, the "
                "keras.applications file for this backbone without its top), "
                "or train from scratch with --config.model.weights=none."
            ) from error
        if isinstance(weights, str) and weights != "imagenet":
            raise ValueError(
                f"config.model.weights={weights!r} does not fit backbone "
                f"{name!r} ({type(error).__name__}: {error})"
            ) from error
        raise
    if resnet_last_stride not in (1, 2):
        raise ValueError(
            f"resnet_last_stride must be 1 or 2, got " f"{resnet_last_stride}"
        )
    if resnet_large_feature_map:
        if name != "resnet50":
            raise ValueError(
                f"resnet_large_feature_map applies to resnet50 only, not {name!r}"
            )
        if resnet_last_stride != 1:
            # wsolevaluation's ResNetCam has no stride-1 layer3 with a
            # stride-2 layer4: its layer4 is always stride 1.
            raise ValueError(
                "resnet_large_feature_map=True (conv4 at stride 1) needs "
                f"resnet_last_stride=1, got {resnet_last_stride}"
            )
    if name == "resnet50" and resnet_last_stride == 1:
        stages = ("conv4", "conv5") if resnet_large_feature_map else ("conv5",)
        net = _resnet_stride_one(net, stages)
    for flag, value in (
        ("vgg_large_feature_map", vgg_large_feature_map),
        ("vgg_released_pools", vgg_released_pools),
    ):
        if value and name != "vgg16":
            raise ValueError(f"{flag} applies to vgg16 only, not {name!r}")
    if vgg_large_feature_map or vgg_released_pools:
        net = _vgg_released_pools(
            net,
            torch_pools=vgg_released_pools,
            pool4_stride_one=vgg_large_feature_map,
        )
    names = spec.levels if levels else (spec.feature_layer,)
    outputs = [net.get_layer(n).output for n in names]
    extractor = keras.Model(
        net.inputs, outputs if levels else outputs[0], name=f"{name}_features"
    )
    inputs = keras.Input((*size, 3), name="image")
    x = ImagePreprocessing(spec.preprocessing, name="preprocessing")(inputs)
    return keras.Model(inputs, extractor(x), name=name_prefix)


def backbone_from_config(model_config, image_size, levels=False, name_prefix="backbone"):
    """`build_backbone` from an experiment's `config.model` section.

    The one place the `config.model` fields (backbone, weights,
    resnet_last_stride, resnet_large_feature_map, vgg_large_feature_map,
    vgg_released_pools, keras_hub_last_stride, keras_hub_args) become a
    feature extractor; every method's backbone(s)
    are built here by `wsol_keras.models.registry.build_model`.
    """
    return build_backbone(
        model_config.backbone,
        image_size,
        weights=model_config.weights,
        levels=levels,
        resnet_last_stride=model_config.get("resnet_last_stride", 2),
        resnet_large_feature_map=model_config.get("resnet_large_feature_map", False),
        vgg_large_feature_map=model_config.get("vgg_large_feature_map", False),
        vgg_released_pools=model_config.get("vgg_released_pools", False),
        keras_hub_last_stride=model_config.get("keras_hub_last_stride", 1),
        keras_hub_args=model_config.get("keras_hub_args", None),
        name_prefix=name_prefix,
    )
