"""Soft Proposal Network (Zhu et al., CVPR 2017) on the package's backbones.

Paper: /shared/seeds/000_8c285086d5c4184c.txt, Sec. 3. Head of the released
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
import ml_collections
from keras import layers, ops

from wsol_keras.backbones import build_backbone
from wsol_keras.layers.soft_proposal import GlobalSumPooling2D, SoftProposal
from wsol_keras.models.base import WSOLModel, sparse_ce


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
        soft_proposal: dict of `SoftProposal` arguments (epsilon, max_iter, ...).
        **kwargs: `WSOLModel` arguments.
    """

    def __init__(
        self,
        backbone,
        num_classes,
        num_maps=1024,
        dropout=0.5,
        multi_label=False,
        soft_proposal=None,
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
            int(num_maps), 3, padding="same", activation="relu", name="adconv"
        )
        self.soft_proposal = SoftProposal(
            return_proposal=True, name="soft_proposal", **dict(soft_proposal or {})
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


def default_method_config():
    return ml_collections.ConfigDict(
        {
            "name": "spn",
            "num_maps": 1024,
            "dropout": 0.5,
            "multi_label": False,
            # None: 0.15 x the longer feature-map side (2.1 on 14x14 maps).
            "epsilon": ml_collections.FieldReference(None, field_type=float),
            "epsilon_factor": 0.15,
            "max_iter": 20,
            "tol": 1e-4,
            "stop_gradient_proposal": True,
        }
    )


def build(config, data_info):
    """Builds the SPN model from `config.model` / `config.method`.

    Args:
        config: experiment ConfigDict (see configs/synthetic_spn.py).
        data_info: dict with "num_classes", "image_size".
    """
    m = config.method
    backbone = build_backbone(
        config.model.backbone,
        data_info["image_size"],
        weights=config.model.weights,
        resnet_last_stride=config.model.get("resnet_last_stride", 2),
    )
    return SPNModel(
        backbone,
        data_info["num_classes"],
        num_maps=m.get("num_maps", 1024),
        dropout=m.get("dropout", 0.5),
        multi_label=m.get("multi_label", False),
        soft_proposal={
            "epsilon": m.get("epsilon", None),
            "epsilon_factor": m.get("epsilon_factor", 0.15),
            "max_iter": m.get("max_iter", 20),
            "tol": m.get("tol", 1e-4),
            "stop_gradient_proposal": m.get("stop_gradient_proposal", True),
        },
        head_lr_multiplier=config.train.head_lr_multiplier,
        name="spn",
    )
