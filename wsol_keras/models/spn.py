"""Soft Proposal Network (Zhu et al., CVPR 2017) on the package's backbones.

Paper: "Soft Proposal Networks for Weakly Supervised Object Localization" (Zhu et al.),
Sec. 3. Head of the released
code (yeezhu/SPN.pytorch, `SP_GoogLeNet` / `SPNetWSL`): a 3x3 conv to 1024
channels + ReLU on the backbone features (U), SoftProposal (V = U o M, Eq. 1-3),
spatial sum pooling (the M-weighted average of U), dropout 0.5 and a dense
layer to C. Class response maps (Sec. 3.3): R_c = sum_k w_kc U_k o M, i.e. the
dense layer's weights applied to V at every position.

Single-label data trains with softmax cross-entropy; `multi_label=True`
(VOC / COCO style) trains with a per-class sigmoid cross-entropy, as the
released code's MultiLabelSoftMarginLoss.
"""

import keras
from keras import layers, ops

from wsol_keras.layers.soft_proposal import GlobalSumPooling2D, SoftProposal
from wsol_keras.models.base import WSOLModel, constructor_defaults, sparse_ce

# SoftProposal's own defaults (one statement of them: the layer's signature).
_SP = constructor_defaults(
    SoftProposal,
    ("epsilon", "epsilon_factor", "max_iter", "tol", "stop_gradient_proposal",
     "epsilon_basis", "walk"),
)


class SPNModel(WSOLModel):
    """Backbone + SPN head.

    Outputs: "logits" [B, C], "cams" [B, h, w, C] (R_c of Sec. 3.3, float32),
    "proposal" [B, h, w] (M, float32).

    Args:
        backbone: feature extractor (`build_backbone`).
        num_classes: C.
        num_maps: channels of the added 3x3 conv (released code: 1024).
        dropout: dropout rate before the classifier (released code: 0.5).
        multi_label: sigmoid loss on multi-hot (or int) labels instead of softmax.
        epsilon, epsilon_factor, max_iter, tol, stop_gradient_proposal,
            epsilon_basis, walk: `SoftProposal` arguments (epsilon None:
            epsilon_factor x the longer feature-map side, 2.1 on 14x14 maps,
            or x H x W with epsilon_basis="area", 29.4, the released
            `vgg16_sp`).
        groups: groups of the added 3x3 conv (released `vgg16_sp`:
            ``nn.Conv2d(512, 1024, 3, padding=1, groups=2)``; Keras'
            ``Conv2D(groups=2)`` splits the channels the same way).
        **kwargs: `WSOLModel` arguments.
    """

    def __init__(
        self,
        backbone,
        num_classes,
        num_maps=1024,
        dropout=0.5,
        multi_label=False,
        epsilon: float | None = _SP["epsilon"],
        epsilon_factor=_SP["epsilon_factor"],
        max_iter=_SP["max_iter"],
        tol=_SP["tol"],
        stop_gradient_proposal=_SP["stop_gradient_proposal"],
        epsilon_basis=_SP["epsilon_basis"],
        walk=_SP["walk"],
        groups=1,
        **kwargs,
    ):
        super().__init__(
            backbone,
            num_classes,
            loss_names=("bce",) if multi_label else ("ce",),
            **kwargs,
        )
        self.multi_label = bool(multi_label)
        self.adconv = layers.Conv2D(
            int(num_maps),
            3,
            padding="same",
            activation="relu",
            groups=int(groups),
            name="adconv",
        )
        self.soft_proposal = SoftProposal(
            epsilon=epsilon,
            epsilon_factor=epsilon_factor,
            max_iter=max_iter,
            tol=tol,
            stop_gradient_proposal=stop_gradient_proposal,
            epsilon_basis=epsilon_basis,
            walk=walk,
            return_proposal=True,
            name="soft_proposal",
        )
        self.pool = GlobalSumPooling2D(name="sum_pool")
        self.dropout = layers.Dropout(float(dropout), name="dropout")
        self.classifier = layers.Dense(num_classes, dtype="float32", name="classifier")

    def forward(self, images, labels=None, hierarchy=None, training=None):
        u = self.adconv(self.backbone(images, training=training))
        v, proposal = self.soft_proposal(u)
        pooled = self.pool(v)
        logits = self.classifier(self.dropout(pooled, training=training))
        # R_c = sum_k w_kc V_k (Sec. 3.3), without the bias (a constant shift).
        cams = ops.einsum(
            "bhwk,kc->bhwc", ops.cast(v, "float32"), self.classifier.kernel
        )
        return {"logits": logits, "cams": cams, "proposal": proposal}

    def loss_terms(self, inputs, outputs, training=True):
        logits = outputs["logits"]
        if not self.multi_label:
            return {"ce": sparse_ce(inputs["label"], logits)}
        labels = inputs["label"]
        if len(labels.shape) == 1:
            labels = ops.one_hot(ops.cast(labels, "int32"), self.num_classes)
        bce = keras.losses.binary_crossentropy(
            ops.cast(labels, "float32")[..., None],
            ops.cast(logits, "float32")[..., None],
            from_logits=True,
        )
        return {"bce": ops.mean(bce)}
