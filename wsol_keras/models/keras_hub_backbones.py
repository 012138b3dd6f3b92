"""keras-hub image backbones as WSOL feature extractors (`keras_hub:<preset or class>`).

`config.model.backbone = "keras_hub:<target>"` builds a keras-hub image
backbone where `<target>` is one of

    * a keras-hub preset name (e.g. ``resnet_50_imagenet``, downloaded by
      keras-hub on first use) or a ``kaggle://`` / ``hf://`` handle;
    * a local preset directory (what ``Backbone.save_to_preset(dir)`` writes:
      ``config.json``, ``model.weights.h5``), for offline use;
    * a backbone class (e.g. ``ResNetBackbone``) built from
      `config.model.keras_hub_args` (its constructor arguments), random init.

`weights`: "imagenet" (or "preset") loads the preset's weights, None the
preset's architecture with random init, a path a ``.weights.h5`` file of the
same backbone.  The input is [0, 255] RGB; the preset's `ImageConverter`
scale and offset (ImageNet mean / std on [0, 1] when it has none, and for a
class) sit in the graph (`ScaleOffset`).

WSOL surgery per family (`keras_hub_last_stride=1`, the default; 2 keeps the
preset's strides).  The CAM papers keep the last feature map at 14x14 for a
224 input (Zhou et al., CVPR 2016, Sec. 2; ACoL, CVPR 2018, Sec. 3.1):

    * ResNetBackbone (v1, v2, vd): the last stack's stride (``stackwise_num_strides``
      [-1], torchvision's layer4) set to 1: 14x14 at 224 instead of 7x7.
    * EfficientNetBackbone: the last stage with stride 2 in ``stackwise_strides``
      (stage 6 of B0-B7) set to 1: 14x14 at 224 instead of 7x7.
    * DenseNetBackbone: no stride field (the strides are the transition
      layers' average pools); used as is, 7x7 at 224.
    * ViTBackbone, DeiTBackbone: no stride to remove; the patch tokens of the
      last layer, reshaped to (H / p) x (W / p) (TS-CAM, Gao et al., ICCV
      2021, Sec. 3.2; `PatchTokensToMap`): 14x14 at 224 for p = 16.  Their
      position embeddings fix the input size: data.image_size must be the
      preset's.

Only the strides change in the surgery, so the rebuilt backbone takes the
original's weights variable by variable.  Multi-level heads (DANet) read the
last three levels of the backbone's feature pyramid (`pyramid_outputs`).
"""

import json
import os

import keras

from wsol_keras.layers.patch_tokens import PatchTokensToMap, ScaleOffset

PREFIX = "keras_hub:"
INSTALL_HINT = "pip install 'wsol_keras[keras_hub]' (or: pip install keras-hub)"

# Supported classes -> the config field holding per-stage strides (None: no
# stride to remove) and whether the output is a token sequence.
FAMILIES = {
    "ResNetBackbone": ("stackwise_num_strides", False),
    "EfficientNetBackbone": ("stackwise_strides", False),
    "DenseNetBackbone": (None, False),
    "ViTBackbone": (None, True),
    "DeiTBackbone": (None, True),
}

# ImageNet mean / std on [0, 1] pixels: keras-hub's image converters for its
# ImageNet CNN presets (timm's defaults); used when a preset has no converter.
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
_PRETRAINED = ("imagenet", "preset")


def is_keras_hub(name):
    """Whether a `config.model.backbone` value names a keras-hub backbone."""
    return isinstance(name, str) and name.startswith(PREFIX)


def import_keras_hub():
    """The `keras_hub` module, or an ImportError naming the install command."""
    try:
        import keras_hub  # pylint: disable=g-import-not-at-top
    except ImportError as error:
        raise ImportError(
            f"config.model.backbone={PREFIX}...: keras-hub is not installed; "
            f"{INSTALL_HINT}"
        ) from error
    return keras_hub


def known_presets(keras_hub):
    """Preset names of the supported families (keras-hub's own list)."""
    names = set()
    for cls_name in FAMILIES:
        names.update(getattr(keras_hub.models, cls_name).presets)
    return sorted(names)


def _unknown(target, keras_hub):
    presets = known_presets(keras_hub)
    return ValueError(
        f"config.model.backbone={PREFIX}{target}: not a local preset directory, "
        f"a supported keras-hub class ({sorted(FAMILIES)}) or a preset of theirs "
        f"({', '.join(presets)})"
    )


def _parse_args(args):
    """`config.model.keras_hub_args` (JSON object string, dict or ConfigDict)."""
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except json.JSONDecodeError as error:
            raise ValueError(
                f"config.model.keras_hub_args={args!r}: not a JSON object ({error})"
            ) from error
    args = args.to_dict() if hasattr(args, "to_dict") else args
    if not isinstance(args, dict):
        raise ValueError(f"config.model.keras_hub_args={args!r}: not a JSON object")
    return dict(args)


def _load(keras_hub, target, size, weights, args):
    """(backbone, preset or None) for a `keras_hub:<target>`."""
    pretrained = weights in _PRETRAINED
    cls = getattr(keras_hub.models, target, None)
    if isinstance(cls, type) and issubclass(cls, keras_hub.models.Backbone):
        if target not in FAMILIES:
            raise ValueError(
                f"config.model.backbone={PREFIX}{target}: unsupported keras-hub "
                f"class; supported: {sorted(FAMILIES)}"
            )
        if pretrained:
            raise ValueError(
                f"config.model.backbone={PREFIX}{target}: a class has no "
                f"pretrained weights; name a preset or a local preset directory, "
                "or set config.model.weights=None"
            )
        if not args:
            raise ValueError(
                f"config.model.backbone={PREFIX}{target}: set "
                "config.model.keras_hub_args to the class's constructor arguments "
                "(or name a preset)"
            )
        args = _parse_args(args)
        shape_arg = "input_shape" if target == "EfficientNetBackbone" else "image_shape"
        args.setdefault(shape_arg, (*size, 3))
        try:
            return cls(**args), None
        except (TypeError, ValueError) as error:
            raise ValueError(
                f"config.model.keras_hub_args={args!r} do not build {target} "
                f"({type(error).__name__}: {error})"
            ) from error
    preset = os.path.expanduser(target)
    local = os.path.isdir(preset)
    if local and not os.path.exists(os.path.join(preset, "config.json")):
        raise FileNotFoundError(
            f"config.model.backbone={PREFIX}{target}: directory without "
            "config.json (not a keras-hub preset; Backbone.save_to_preset writes one)"
        )
    if not local and "://" not in target and target not in known_presets(keras_hub):
        raise _unknown(target, keras_hub)
    try:
        net = keras_hub.models.Backbone.from_preset(preset, load_weights=pretrained)
    except Exception as error:  # pylint: disable=broad-except
        if local:
            raise ValueError(
                f"config.model.backbone={PREFIX}{target}: cannot load the preset "
                f"directory ({type(error).__name__}: {error})"
            ) from error
        raise OSError(
            f"could not fetch keras-hub preset {target!r} ({type(error).__name__}: "
            f"{error}). Offline, save it once where it can be fetched "
            "(keras_hub.models.Backbone.from_preset(name).save_to_preset(dir)) and "
            f"pass {PREFIX}/path/to/dir"
        ) from error
    return net, preset


def _scale_offset(keras_hub, preset):
    """The preset's ImageConverter (scale, offset) for [0, 255] pixels."""
    default = (
        [1.0 / (255.0 * s) for s in _IMAGENET_STD],
        [-m / s for m, s in zip(_IMAGENET_MEAN, _IMAGENET_STD)],
    )
    if preset is None:
        return default
    try:
        converter = keras_hub.layers.ImageConverter.from_preset(preset)
    except Exception:  # pylint: disable=broad-except
        return default  # no image_converter.json in the preset
    scale = 1.0 if converter.scale is None else converter.scale
    offset = 0.0 if converter.offset is None else converter.offset
    return scale, offset


def _rebuild(net, **changes):
    """`net`'s class from its config with `changes`, keeping every weight."""
    clone = type(net).from_config({**net.get_config(), **changes})
    old, new = net.get_weights(), clone.get_weights()
    if [w.shape for w in old] != [w.shape for w in new]:
        raise ValueError(
            f"{type(net).__name__}: rebuilding with {changes} changed its variables"
        )
    clone.set_weights(old)
    return clone


def _last_stride_one(net, field):
    """`net` with the last stride-2 stage of `field` at stride 1 (weights kept)."""
    strides = list(net.get_config()[field])
    deep = [i for i, s in enumerate(strides) if s != 1]
    if not deep:
        return net
    strides[deep[-1]] = 1
    return _rebuild(net, **{field: strides})


def _fit_size(net, family, size, tokens):
    """`net` for inputs of `size` (CNNs: rebuilt; ViT/DeiT: must match)."""
    config = net.get_config()
    key = "input_shape" if "input_shape" in config else "image_shape"
    shape = tuple(config.get(key) or (None, None, 3))
    if tuple(shape[:2]) in ((None, None), tuple(size)):
        return net
    if tokens:
        raise ValueError(
            f"{family} position embeddings are for {shape[0]}x{shape[1]} inputs; "
            f"set data.image_size={shape[0]} (got {size[0]}x{size[1]})"
        )
    return _rebuild(net, **{key: (None, None, shape[2])})


def build_keras_hub_backbone(
    name, size, weights=None, levels=False, last_stride=1, args=None,
    name_prefix="backbone", other_surgery=False,
):
    """A `build_backbone`-style model from `keras_hub:<preset or class>`.

    Args:
        name: "keras_hub:" + preset name, local preset directory or class name.
        size: (height, width) of the input.
        weights: "imagenet"/"preset" (the preset's), None (random init) or a
            path to a ``.weights.h5`` file of this backbone.
        levels: return the last three feature-pyramid levels (DANet).
        last_stride: 1 (WSOL surgery, see the module docstring) or 2.
        args: the class's constructor arguments when `name` names a class.
        name_prefix: name of the returned model.
        other_surgery: whether a resnet_*/vgg_* surgery field is set (refused:
            they apply to `BACKBONES`).

    Returns:
        A `keras.Model` mapping [B, H, W, 3] floats in [0, 255] to the feature
        map (or the three levels), with a nested `<kh_family>_features` model.
    """
    if other_surgery:
        raise ValueError(
            f"config.model.resnet_*/vgg_* surgery fields apply to keras.applications "
            f"backbones, not {name}; it uses keras_hub_last_stride"
        )
    if last_stride not in (1, 2):
        raise ValueError(f"keras_hub_last_stride must be 1 or 2, got {last_stride}")
    keras_hub = import_keras_hub()
    target = name[len(PREFIX):].strip()
    if not target:
        raise _unknown(target, keras_hub)
    if isinstance(weights, str) and weights not in _PRETRAINED:
        if not os.path.exists(weights):
            raise FileNotFoundError(f"backbone weights file not found: {weights}")
    net, preset = _load(keras_hub, target, size, weights, args)
    family = type(net).__name__
    if family not in FAMILIES:
        raise ValueError(
            f"config.model.backbone={name}: a {family}, not a supported image "
            f"backbone ({sorted(FAMILIES)})"
        )
    if isinstance(weights, str) and weights not in _PRETRAINED:
        try:
            net.load_weights(weights)
        except Exception as error:  # pylint: disable=broad-except
            raise ValueError(
                f"config.model.weights={weights!r} does not fit backbone {name!r} "
                f"({type(error).__name__}: {error})"
            ) from error
    stride_field, tokens = FAMILIES[family]
    net = _fit_size(net, family, size, tokens)
    if stride_field and last_stride == 1:
        net = _last_stride_one(net, stride_field)
    tag = "kh_" + family[: -len("Backbone")].lower()
    if tokens:
        if levels:
            raise ValueError(f"{family}: no feature pyramid for multi-level heads (DANet)")
        patch = net.get_config()["patch_size"]
        patch = (patch, patch) if isinstance(patch, int) else tuple(patch)
        grid = (size[0] // patch[0], size[1] // patch[1])
        outputs = PatchTokensToMap(grid, name="patch_token_map")(net.output)
    elif levels:
        pyramid = getattr(net, "pyramid_outputs", None) or {}
        if len(pyramid) < 3:
            raise ValueError(f"{family}: fewer than 3 pyramid levels for DANet")
        keys = sorted(pyramid, key=lambda k: int(k[1:]))[-3:]
        outputs = [pyramid[k] for k in keys[:2]] + [net.output]
    else:
        outputs = net.output
    extractor = keras.Model(net.inputs, outputs, name=f"{tag}_features")
    scale, offset = _scale_offset(keras_hub, preset)
    inputs = keras.Input((*size, 3), name="image")
    x = ScaleOffset(scale, offset, name="preprocessing")(inputs)
    return keras.Model(inputs, extractor(x), name=name_prefix)
