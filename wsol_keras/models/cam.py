"""The CAM baseline (Zhou et al. 2016; ACoL Sec. 3.1): backbone -> class maps -> GAP.

This module is the template for a method: a `WSOLModel` subclass with
`forward` / `loss_terms`, registered in `wsol_keras.models.registry.METHODS`.
Its constructor's keyword arguments (after the backbone and `num_classes`) are
the method's `config.method` fields, defaults included: the registry reads them
from the signature.
"""

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
