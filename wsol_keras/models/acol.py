"""Adversarial Complementary Learning (Zhang et al., CVPR 2018).

Paper: "Adversarial Complementary Learning for Weakly Supervised Object Localization" (Zhang et al.),
Sec. 3.2, Algorithm 1, Sec. 4.1.
Two parallel classifiers A and B on the shared backbone features S, each
3x3 conv 1024 + ReLU, 3x3 conv 1024 + ReLU, 1x1 conv to C, GAP (Sec. 4.1).
B's input is S erased where A's normalized map of the target class is >= delta
(ground-truth class in training, top-1 predicted class at test time, with the
same delta, Sec. 4.1). Loss CE(A) + CE(B); the localization map of class c is
max(minmax(M^A_c), minmax(M^B_c)) (Sec. 3.2). Classification uses A's logits,
whose maps choose the erased region (as the released code's `logits[0]`).
"""

from keras import ops

from wsol_keras.layers.cam_head import CAMHead, global_average_logits
from wsol_keras.cams import normalize_maps
from wsol_keras.layers.complementary_erase import ComplementaryErase
from wsol_keras.models.base import WSOLModel, sparse_ce


class ACoLModel(WSOLModel):
    """Backbone + classifiers A and B with complementary erasing.

    Outputs: "logits" (A) [B, C], "logits_b" [B, C], "cams" [B, h, w, C] the
    fused maps max(minmax(A), minmax(B)) per class in [0, 1], "cams_a" and
    "cams_b" the raw class maps.

    Args:
        backbone: feature extractor (`build_backbone`).
        num_classes: C.
        conv_filters: 3x3 conv widths of each classifier (paper: (1024, 1024)).
        delta: erasing threshold (released code 0.6).
        **kwargs: `WSOLModel` arguments.
    """

    def __init__(
        self, backbone, num_classes, conv_filters=(1024, 1024), delta=0.6, **kwargs
    ):
        super().__init__(backbone, num_classes, loss_names=("ce_a", "ce_b"), **kwargs)
        self.head_a = CAMHead(num_classes, conv_filters=conv_filters, name="head_a")
        self.head_b = CAMHead(num_classes, conv_filters=conv_filters, name="head_b")
        # B sees erased features at test time too (Sec. 4.1: "the threshold
        # delta maintains constant w.r.t. the value in training").
        self.erase = ComplementaryErase(
            delta=delta, erase_at_inference=True, name="complementary_erase"
        )

    def forward(self, images, labels=None, hierarchy=None, training=None):
        features = self.backbone(images, training=training)
        cams_a = self.head_a(features)
        erased = self.erase(features, cams_a, labels, training=training)
        cams_b = self.head_b(erased)
        fused = ops.maximum(normalize_maps(cams_a), normalize_maps(cams_b))
        return {
            "logits": global_average_logits(cams_a),
            "logits_b": global_average_logits(cams_b),
            "cams": fused,
            "cams_a": cams_a,
            "cams_b": cams_b,
        }

    def loss_terms(self, inputs, outputs, training=True):
        labels = inputs["label"]
        return {
            "ce_a": sparse_ce(labels, outputs["logits"]),
            "ce_b": sparse_ce(labels, outputs["logits_b"]),
        }
