"""CutMix training of a CAM network (Yun et al., ICCV 2019).

Paper: "CutMix: Regularization Strategy to Train Strong Classifiers with
Localizable Features" (Yun et al.), Sec. 3.1, Eq. 1-2.  The mixing is a
tf.data batch augmentation (`wsol_keras.data.cutmix.cutmix_batch`) that
`train_batch_transform` hands to wsol-train; each training batch then carries
"label_b" (y_B) and "mix_weight" (lam, [B]) beside "label" (y_A), and the loss
is lam CE(y_A) + (1 - lam) CE(y_B) (clovaai/wsolevaluation main.py
`_wsol_training`), the soft-label cross-entropy of Eq. 1's y~.  Batches
without those keys (evaluation, `model.evaluate`) get the plain CE.  The
network is CAM's (wsolevaluation config.py: 'cutmix' -> the 'cam'
architecture).
"""

import keras
import tensorflow as tf
from keras import ops

from wsol_keras.data.cutmix import cutmix_batch
from wsol_keras.models.base import sparse_ce
from wsol_keras.models.cam import CAMModel


def mixed_cross_entropy(labels_a, labels_b, mix_weight, logits):
    """mean over the batch of lam CE(logits, y_A) + (1 - lam) CE(logits, y_B)."""
    logits = ops.cast(logits, "float32")
    ce_a = keras.losses.sparse_categorical_crossentropy(labels_a, logits, from_logits=True)
    ce_b = keras.losses.sparse_categorical_crossentropy(labels_b, logits, from_logits=True)
    lam = ops.reshape(ops.cast(mix_weight, "float32"), (-1,))
    return ops.mean(lam * ce_a + (1.0 - lam) * ce_b)


class CutMixModel(CAMModel):
    """CAM trained on CutMix batches.

    Args:
        backbone: feature extractor (`build_backbone`).
        num_classes: C.
        cutmix_beta: alpha of lam ~ Beta(alpha, alpha) (wsolevaluation
            `--cutmix_beta` 1.0; Sec. 3.1: alpha = 1).
        cutmix_prob: probability that a batch is mixed (`--cutmix_prob` 1.0).
        conv_filters, classifier_init_stddev: `CAMModel`'s head.
        seed: seed of the mixing (config.seed); batch i uses (seed, i).
        **kwargs: `WSOLModel` arguments.
    """

    def __init__(
        self,
        backbone,
        num_classes,
        cutmix_beta=1.0,
        cutmix_prob=1.0,
        conv_filters=(),
        classifier_init_stddev: float | None = None,
        seed=None,
        **kwargs,
    ):
        super().__init__(
            backbone,
            num_classes,
            conv_filters=conv_filters,
            classifier_init_stddev=classifier_init_stddev,
            **kwargs,
        )
        if not 0.0 <= float(cutmix_prob) <= 1.0:
            raise ValueError(
                f"config.method.cutmix_prob must be in [0, 1], got {cutmix_prob}"
            )
        self.cutmix_beta = float(cutmix_beta)
        self.cutmix_prob = float(cutmix_prob)
        self.mix_seed = 0 if seed is None else int(seed)

    def train_batch_transform(self):
        """(batch_index, x, y) -> (x, y) with the batch CutMix-ed."""

        def transform(batch_index, x, y):
            seed = tf.stack([tf.constant(self.mix_seed, tf.int64), batch_index])
            images, labels_a, labels_b, lam = cutmix_batch(
                x["image"], x["label"], seed, self.cutmix_beta, self.cutmix_prob
            )
            x = {**x, "image": images, "label_b": labels_b, "mix_weight": lam}
            return x, labels_a

        return transform

    def loss_terms(self, inputs, outputs, training=True):
        if isinstance(inputs, dict) and "mix_weight" in inputs:
            ce = mixed_cross_entropy(
                inputs["label"], inputs["label_b"], inputs["mix_weight"], outputs["logits"]
            )
        else:
            ce = sparse_ce(inputs["label"], outputs["logits"])
        return {"ce": ce}
