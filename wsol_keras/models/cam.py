"""The CAM baseline (Zhou et al. 2016; ACoL Sec. 3.1): backbone -> class maps -> GAP.

This module is the template for a method: a `WSOLModel` subclass with
`forward` / `loss_terms`, registered in `wsol_keras.models.registry.METHODS`.
Its constructor's keyword arguments (after the backbone and `num_classes`) are
the method's `config.method` fields, defaults included: the registry reads them
from the signature.
"""

import keras

from wsol_keras.layers.cam_head import CAMHead, global_average_logits
from wsol_keras.models.base import WSOLModel


class CAMModel(WSOLModel):
    """Backbone + `CAMHead`; logits are the GAP of the class maps.

    Args:
        backbone: feature extractor (`build_backbone`).
        num_classes: C.
        conv_filters: 3x3 conv widths before the 1x1 classifier.
        classifier_init_stddev: None initializes the 1x1 classifier like the
            convs (he_normal); a float draws it from N(0, stddev) (DGL's
            released `linear` layer: 0.01, chuangchuangtan/DGL
            train_code/models_vgg.py).  The 1x1 conv before GAP is the linear
            layer after GAP (ACoL Sec. 3.1), so the init carries over.
        **kwargs: `WSOLModel` arguments.
    """

    def __init__(
        self,
        backbone,
        num_classes,
        conv_filters=(),
        classifier_init_stddev: float | None = None,
        **kwargs,
    ):
        super().__init__(backbone, num_classes, **kwargs)
        classifier_initializer = None
        if classifier_init_stddev is not None:
            if not classifier_init_stddev > 0:
                raise ValueError(
                    "config.method.classifier_init_stddev must be > 0 or None, "
                    f"got {classifier_init_stddev}"
                )
            classifier_initializer = keras.initializers.RandomNormal(
                stddev=float(classifier_init_stddev)
            )
        self.head = CAMHead(
            num_classes,
            conv_filters=conv_filters,
            classifier_initializer=classifier_initializer,
            name="cam_head",
        )

    def forward(self, images, labels=None, hierarchy=None, training=None):
        cams = self.head(self.backbone(images, training=training))
        return {"logits": global_average_logits(cams), "cams": cams}
