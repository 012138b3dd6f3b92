"""ADL: CAM with Attention-based Dropout Layers in the backbone (Choe & Shim, CVPR 2019).

Paper: "Attention-based Dropout Layer for Weakly Supervised Object
Localization" (Choe & Shim), Sec. 3 (the layer, `layers.AttentionDropout`)
and Sec. 4.1 (where it goes: after several feature blocks, the CAM head on
top).  Positions as released in clovaai/wsolevaluation:

    * vgg16 (wsol/vgg.py configs_dict 'adl' '14x14'): after pool3, after
      conv4_3 (before pool4) and after conv5_3 (Keras `block3_pool`,
      `block4_conv3`, `block5_conv3`); the head is VggCam's (3x3 conv to 1024
      + ReLU, GAP, fc: `conv_filters=(1024,)` in the CUB config).
    * resnet50 (wsol/resnet.py `_ADL_POSITION = [[], [], [], [0], [0, 2]]`):
      after block 0 of layer3 and blocks 0 and 2 of layer4 (Keras
      `conv4_block1_out`, `conv5_block1_out`, `conv5_block3_out`).
    * inception_v3 (wsol/inception.py InceptionAdl): after Mixed_5d and
      Mixed_6e (Keras `mixed2`, `mixed7`); the release's third ADL sits in its
      SPG-style head, which the package's Inception cut does not have.
    * small_cnn (the package's CPU network, by analogy with VGG16): after the
      last pool (`stage2_pool`) and the last conv (`stage3_relu3`).

`adl_layers` names other positions (any layer of the backbone's feature
extractor); ADL after a layer multiplies that layer's output before the next
layer reads it.  No weights are added, so pretrained weights load by name.
"""

import keras

from wsol_keras.layers.attention_dropout import AttentionDropout
from wsol_keras.models.cam import CAMModel

ADL_LAYERS = {
    "vgg16": ("block3_pool", "block4_conv3", "block5_conv3"),
    "resnet50": ("conv4_block1_out", "conv5_block1_out", "conv5_block3_out"),
    "inception_v3": ("mixed2", "mixed7"),
    "small_cnn": ("stage2_pool", "stage3_relu3"),
}


def _feature_extractor(backbone):
    """The nested `<name>_features` model of a `build_backbone` backbone."""
    nested = [layer for layer in backbone.layers if isinstance(layer, keras.Model)]
    if len(nested) != 1 or not nested[0].name.endswith("_features"):
        raise ValueError(
            f"ADL: backbone {backbone.name!r} is not a build_backbone model "
            "(one nested '<name>_features' model expected)"
        )
    return nested[0]


def insert_attention_dropout(backbone, layer_names=(), **adl_kwargs):
    """`backbone` with an `AttentionDropout` after each named layer.

    The backbone's layers are reused (weights shared, names kept); the new
    layers are named `<layer>_adl`.

    Args:
        backbone: a `wsol_keras.models.backbones.build_backbone` model.
        layer_names: layers of its feature extractor; empty: `ADL_LAYERS` of
            the backbone's architecture.
        **adl_kwargs: `AttentionDropout` arguments (drop_rate, drop_threshold,
            seed; each layer gets seed + its position when seed is set).
    """
    extractor = _feature_extractor(backbone)
    arch = extractor.name[: -len("_features")]
    names = tuple(layer_names) or ADL_LAYERS.get(arch, ())
    if not names:
        raise ValueError(
            f"config.method.adl_layers: no default ADL positions for backbone "
            f"{arch!r}; name layers of it, e.g. {[l.name for l in extractor.layers[-3:]]}"
        )
    known = {layer.name for layer in extractor.layers}
    missing = [n for n in names if n not in known]
    if missing:
        raise ValueError(
            f"config.method.adl_layers: {missing} name no layer of backbone "
            f"{arch!r} (its last layers: {[l.name for l in extractor.layers[-4:]]})"
        )
    seed = adl_kwargs.pop("seed", None)
    adl = {
        n: AttentionDropout(
            seed=None if seed is None else int(seed) + i, name=f"{n}_adl", **adl_kwargs
        )
        for i, n in enumerate(names)
    }

    def call(layer, *args, **kwargs):
        out = layer(*args, **kwargs)
        return adl[layer.name](out) if layer.name in adl else out

    rebuilt = keras.models.clone_model(
        extractor, clone_function=lambda layer: layer, call_function=call
    )
    inputs = keras.Input(backbone.inputs[0].shape[1:], name="image")
    x = inputs
    for layer in backbone.layers[1:]:
        x = rebuilt(x) if layer is extractor else layer(x)
    return keras.Model(inputs, x, name=backbone.name)


class ADLModel(CAMModel):
    """CAM whose backbone carries Attention-based Dropout Layers (ADL).

    Args:
        backbone: feature extractor (`build_backbone`).
        num_classes: C.
        adl_drop_rate: probability of the drop mask (wsolevaluation config.py
            `--adl_drop_rate` 0.75).
        adl_drop_threshold: gamma (wsolevaluation `--adl_threshold` 0.9).
        adl_layers: backbone layer names followed by ADL; empty: `ADL_LAYERS`.
        seed: seed of the layers' random choice (config.seed).
        conv_filters, classifier_init_stddev: `CAMModel`'s head.
        **kwargs: `WSOLModel` arguments.
    """

    def __init__(
        self,
        backbone,
        num_classes,
        adl_drop_rate=0.75,
        adl_drop_threshold=0.9,
        adl_layers=(),
        conv_filters=(),
        classifier_init_stddev: float | None = None,
        seed=None,
        **kwargs,
    ):
        backbone = insert_attention_dropout(
            backbone,
            adl_layers,
            drop_rate=adl_drop_rate,
            drop_threshold=adl_drop_threshold,
            seed=seed,
        )
        super().__init__(
            backbone,
            num_classes,
            conv_filters=conv_filters,
            classifier_init_stddev=classifier_init_stddev,
            **kwargs,
        )
