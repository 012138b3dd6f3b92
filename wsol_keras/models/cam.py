"""The CAM baseline (Zhou et al. 2016; ACoL Sec. 3.1): backbone -> class maps -> GAP.

This module is the template for a method: a `WSOLModel` subclass with
`forward` / `loss_terms`, a `build(config, data_info)` function registered in
`wsol_keras.methods.METHODS`, and a `default_method_config()` merged into the
experiment config under `config.method`.
"""

import ml_collections

from wsol_keras.backbones import build_backbone
from wsol_keras.layers.cam_head import CAMHead, global_average_logits
from wsol_keras.models.base import WSOLModel


class CAMModel(WSOLModel):
    """Backbone + `CAMHead`; logits are the GAP of the class maps.

    Args:
        backbone: feature extractor (`build_backbone`).
        num_classes: C.
        conv_filters: 3x3 conv widths before the 1x1 classifier.
        **kwargs: `WSOLModel` arguments.
    """

    def __init__(self, backbone, num_classes, conv_filters=(), **kwargs):
        super().__init__(backbone, num_classes, **kwargs)
        self.head = CAMHead(num_classes, conv_filters=conv_filters, name="cam_head")

    def forward(self, images, labels=None, hierarchy=None, training=None):
        cams = self.head(self.backbone(images, training=training))
        return {"logits": global_average_logits(cams), "cams": cams}


def default_method_config():
    return ml_collections.ConfigDict({"name": "cam", "conv_filters": ()})


def build(config, data_info):
    """Builds the CAM model from `config.model` / `config.method`.

    Args:
        config: experiment ConfigDict (see configs/synthetic_cam.py).
        data_info: dict with "num_classes", "hierarchy_sizes", "image_size".
    """
    backbone = build_backbone(
        config.model.backbone,
        data_info["image_size"],
        weights=config.model.weights,
        resnet_last_stride=config.model.get("resnet_last_stride", 2),
    )
    return CAMModel(
        backbone,
        data_info["num_classes"],
        conv_filters=tuple(config.method.get("conv_filters", ())),
        head_lr_multiplier=config.train.head_lr_multiplier,
        name="cam",
    )
