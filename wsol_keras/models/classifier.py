"""SLT-Net's classifier heads, and its classifier on its own.

Backbone -> GAP or VGG16's fc6 / fc7 -> Dense(C).

Guo et al., "Strengthen Learning Tolerance for Weakly Supervised Object
Localization", CVPR 2022, Sec. 3.1 / Fig. 2b ("the classifier is trained
independently") and Sec. 4.2 (VGG16 with its 1000-way output replaced by a
C-way one).  wsol-train's SLT phase 1 (`wsol_keras.models.slt_classifier_phase`) trains
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

from wsol_keras.layers.vgg_top import VGG16Top
from wsol_keras.models.base import WSOLModel

# config.method.classifier_head: what maps the classifier's backbone features
# to the input of its Dense(C) layer.
CLASSIFIER_HEADS = ("gap", "vgg_fc")


def check_classifier_head(head, field="config.method.classifier_head"):
    """`head` if it is one of `CLASSIFIER_HEADS`, else a ValueError naming `field`."""
    if head not in CLASSIFIER_HEADS:
        raise ValueError(f"{field}={head!r}: choose one of {CLASSIFIER_HEADS}")
    return head


def build_classifier_top(head, pretrained_top, name):
    """The layer of `head` before the Dense(C) layer.

    "gap": GAP; "vgg_fc": `VGG16Top` (block5_pool, adaptive 7x7 pool, fc6,
    fc7 with dropout 0.5), ImageNet fc weights when ``pretrained_top`` is
    "imagenet" (config.model.weights).
    """
    if check_classifier_head(head) == "gap":
        return layers.GlobalAveragePooling2D(name=name)
    return VGG16Top(pretrained=pretrained_top, name=name)


class ClassifierModel(WSOLModel):
    """Backbone -> `build_classifier_top` -> Dense(C), cross-entropy.

    Args:
        backbone: feature extractor.
        num_classes: C.
        head: "gap" or "vgg_fc" (`CLASSIFIER_HEADS`).
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
