"""SLT-Net's classifier on its own: backbone -> GAP or VGG16's fc6 / fc7 -> Dense(C).

Guo et al., "Strengthen Learning Tolerance for Weakly Supervised Object
Localization", CVPR 2022, Sec. 3.1 / Fig. 2b ("the classifier is trained
independently") and Sec. 4.2 (VGG16 with its 1000-way output replaced by a
C-way one).  wsol-train's SLT phase 1 (`wsol_keras.slt_classifier`) trains
this model when ``config.method.classifier_head="vgg_fc"``; a GAP head is
trained as a CAM model with ``conv_filters=()`` instead (the same function).

It is registered as an internal method ("slt_classifier",
`wsol_keras.models.registry.INTERNAL_METHODS`), not as a WSOL method: its
"cams" output is only a class-agnostic stand-in so that wsol-train's val
pass, heat maps and report run on the phase-1 workdir -- the channel mean of
the backbone's features, the same map for every class (the "activation-based
attention" of Zagoruyko & Komodakis, "Paying More Attention to Attention",
ICLR 2017, Sec. 3.1, with p=1).  Its localization scores say nothing about
SLT-Net's localizer.
"""

from keras import layers, ops

from wsol_keras.models.base import WSOLModel
from wsol_keras.models.slt import build_classifier_top


class ClassifierModel(WSOLModel):
    """Backbone -> `build_classifier_top` -> Dense(C), cross-entropy.

    Args:
        backbone: feature extractor.
        num_classes: C.
        head: "gap" or "vgg_fc" (`wsol_keras.models.slt.CLASSIFIER_HEADS`).
        pretrained_top: "imagenet" loads VGG16's fc6 / fc7 (from
            config.model.weights, filled by the registry).
        **kwargs: `WSOLModel` arguments.
    """

    def __init__(
        self,
        backbone,
        num_classes,
        head="vgg_fc",
        pretrained_top: str | None = None,
        **kwargs,
    ):
        super().__init__(backbone, num_classes, **kwargs)
        self.head = head
        self.top = build_classifier_top(head, pretrained_top, "classifier_top")
        self.fc = layers.Dense(num_classes, dtype="float32", name="classifier_fc")

    def forward(self, images, labels=None, hierarchy=None, training=None):
        feats = self.backbone(images, training=training)
        logits = self.fc(self.top(feats, training=training))
        agnostic = ops.mean(ops.cast(feats, "float32"), axis=-1, keepdims=True)
        cams = ops.repeat(agnostic, self.num_classes, axis=-1)
        return {"logits": logits, "cams": cams}

    def _gradient_multipliers(self):
        # Backbone and VGG16's fc6 / fc7 are pretrained: the base rate; the
        # new Dense(C) gets head_lr_multiplier (fine-tuning convention).
        new = {id(v) for v in self.fc.trainable_variables}
        return [
            self.head_lr_multiplier if id(v) in new else 1.0
            for v in self.trainable_variables
        ]
