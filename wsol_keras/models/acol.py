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

Feature path as released (xiaomengyc/ACoL models/vgg/vgg_v1.py; the same in
clovaai/wsolevaluation wsol/vgg.py VggAcol): a 3x3 stride-1 max pool after the
backbone (pool5 'N' / 'M2', padding 1), then `F.avg_pool2d(kernel_size=3,
stride=1, padding=1)` before both heads.  torch's avg_pool2d counts the zero
padding (count_include_pad=True: border sums / 9); Keras' "same" average
pooling divides by the valid count instead, so the padding is explicit here.
Both pools widen the maps and the erased region; `feature_pools=False` drops
them (the paper's text, Sec. 4.1, only says "remove the layers after conv5-3").
Heads use Xavier-uniform weights and zero biases (released
`_initialize_weights`: `nn.init.xavier_uniform`; wsolevaluation
`init_mode='xavier'`).  The released CUB model has 28x28 maps (pool4 at
stride 1, cfg 'D1'): `config.model.vgg_large_feature_map=True`, off by default as in
the paper and wsolevaluation's default 14x14.  The release's stride-2
pools (`MaxPool2d(3, stride=2, padding=1)`) are `config.model.vgg_released_pools`,
on in the CUB config (`wsol_keras.models.backbones`).
"""

from keras import layers, ops

from wsol_keras.layers.cam_head import CAMHead, global_average_logits
from wsol_keras.localization.primitives import normalize_maps
from wsol_keras.layers.complementary_erase import ComplementaryErase
from wsol_keras.models.base import WSOLModel, sparse_ce


def released_feature_pools():
    """[max 3x3 s1 pad 1 (-inf padding, as torch), zero pad 1 + avg 3x3 valid]:
    torch's `avg_pool2d(3, 1, padding=1)` with count_include_pad=True."""
    return [
        layers.MaxPooling2D(3, strides=1, padding="same", name="pool5_stride1"),
        layers.ZeroPadding2D(1, name="avgpool_pad"),
        layers.AveragePooling2D(3, strides=1, padding="valid", name="avgpool"),
    ]


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
        feature_pools: apply the released pools (see module doc).
        kernel_initializer: heads' conv initializer (released: Xavier).
        **kwargs: `WSOLModel` arguments.
    """

    def __init__(
        self,
        backbone,
        num_classes,
        conv_filters=(1024, 1024),
        delta=0.6,
        feature_pools=True,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(backbone, num_classes, loss_names=("ce_a", "ce_b"), **kwargs)
        self.feature_pools = released_feature_pools() if feature_pools else []
        self.head_a = CAMHead(
            num_classes,
            conv_filters=conv_filters,
            kernel_initializer=kernel_initializer,
            name="head_a",
        )
        self.head_b = CAMHead(
            num_classes,
            conv_filters=conv_filters,
            kernel_initializer=kernel_initializer,
            name="head_b",
        )
        # B sees erased features at test time too (Sec. 4.1: "the threshold
        # delta maintains constant w.r.t. the value in training").
        self.erase = ComplementaryErase(
            delta=delta, erase_at_inference=True, name="complementary_erase"
        )

    def forward(self, images, labels=None, hierarchy=None, training=None):
        features = self.pooled_features(self.backbone(images, training=training))
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

    def pooled_features(self, features):
        """The heads' input: backbone features after the released pools."""
        for pool in self.feature_pools:
            features = pool(features)
        return features

    def loss_terms(self, inputs, outputs, training=True):
        labels = inputs["label"]
        return {
            "ce_a": sparse_ce(labels, outputs["logits"]),
            "ce_b": sparse_ce(labels, outputs["logits_b"]),
        }
