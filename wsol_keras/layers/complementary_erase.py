"""Complementary erasing of ACoL (Zhang et al., CVPR 2018).

Paper: "Adversarial Complementary Learning for Weakly Supervised Object Localization" (Zhang et al.),
Sec. 3.2 and Algorithm 1
(lines 3-5): take classifier A's localization map M^A of the target class,
normalize it to [0, 1], resize it to the feature size by linear interpolation if
needed, and replace the features S by zeros where the normalized map passes the
threshold delta; classifier B then sees the erased features S~.
"""

import keras
from keras import layers, ops

from wsol_keras.localization.primitives import normalize_maps, select_class_maps, top1_class_ids


@keras.saving.register_keras_serializable(package="wsol_keras")
class ComplementaryErase(layers.Layer):
    """Zero the features where branch A's normalized class map is >= delta.

    Call: `layer(features, class_maps, labels=None, training=None)`:
      features: S [B, H, W, K] (input of classifier B).
      class_maps: classifier A's class maps [B, h, w, C] (ACoL Eq. 3: the output
        of A's 1x1 conv; their spatial mean are A's logits, Eq. 4).
      labels: optional int [B] (or [B, 1]) ground-truth class ids.
    Returns S~ with S's shape and dtype.

    Which class map is used (Algorithm 1 line 3 in training, Sec. 3.2 "according
    to the predicted class" at test time): the ground-truth `labels` when
    training=True and labels are given; otherwise the top-1 class of A, i.e. the
    argmax of the spatial mean of `class_maps`. `labels_at_inference=True` uses
    given labels at inference too (e.g. to study GT-known maps).

    Erasing happens only when training=True unless `erase_at_inference=True`
    (the ACoL model sets it: its classifier B sees erased features at test time,
    "the threshold delta maintains constant w.r.t. the value in training"). The
    mask is computed under stop_gradient, so no gradient reaches A through it;
    gradients reach S through the kept positions only.

    Threshold: the released code erases where map >= delta (torch.ge); the
    paper's Algorithm 1 writes >. Ties are measure-zero except at the max (= 1),
    which is erased for any delta <= 1 either way.

    Args:
        delta: erasing threshold in [0, 1] (released code 0.6; wsolevaluation 0.7).
        erase_at_inference: also erase when training is False/None.
        labels_at_inference: use given labels (not the top-1 prediction) at
          inference.
        interpolation: how a map of a different size is resized to S's size
          (paper: linear interpolation).
    """

    def __init__(
        self,
        delta=0.6,
        erase_at_inference=False,
        labels_at_inference=False,
        interpolation="bilinear",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not 0.0 <= float(delta) <= 1.0:
            raise ValueError(
                f"ComplementaryErase: delta must be in [0, 1], got {delta}"
            )
        if interpolation not in ("bilinear", "nearest", "bicubic"):
            raise ValueError(
                "ComplementaryErase: interpolation must be 'bilinear', "
                f"'nearest' or 'bicubic', got {interpolation!r}"
            )
        self.delta = float(delta)
        self.erase_at_inference = bool(erase_at_inference)
        self.labels_at_inference = bool(labels_at_inference)
        self.interpolation = interpolation

    def build(self, features_shape, class_maps_shape=None, labels_shape=None):
        if len(features_shape) != 4:
            raise ValueError(
                "ComplementaryErase: features must be [B, H, W, K], got "
                f"shape {features_shape}"
            )
        if class_maps_shape is not None and len(class_maps_shape) != 4:
            raise ValueError(
                "ComplementaryErase: class_maps must be [B, h, w, C], "
                f"got shape {class_maps_shape}"
            )

    def erase_mask(self, features, class_maps, labels=None, training=None):
        """float32 [B, H, W]: 0 where erased, 1 where kept (no gradient)."""
        maps = ops.stop_gradient(ops.cast(class_maps, "float32"))
        use_labels = labels is not None and (bool(training) or self.labels_at_inference)
        if use_labels:
            class_ids = ops.reshape(labels, (-1,))
        else:
            class_ids = top1_class_ids(ops.mean(maps, axis=(1, 2)))
        att = normalize_maps(select_class_maps(maps, class_ids))
        size = ops.shape(features)[1:3]
        if tuple(att.shape[1:3]) != tuple(features.shape[1:3]) or (
            features.shape[1] is None or features.shape[2] is None
        ):
            att = ops.image.resize(
                att[..., None], size, interpolation=self.interpolation
            )[..., 0]
        return ops.cast(att < self.delta, "float32")

    def call(self, features, class_maps, labels=None, training=None):
        if not (training or self.erase_at_inference):
            return features
        mask = self.erase_mask(features, class_maps, labels, training)
        return features * ops.cast(mask[..., None], features.dtype)

    def compute_output_shape(
        self, features_shape, class_maps_shape=None, labels_shape=None
    ):
        return tuple(features_shape)

    def get_config(self):
        return {
            **super().get_config(),
            "delta": self.delta,
            "erase_at_inference": self.erase_at_inference,
            "labels_at_inference": self.labels_at_inference,
            "interpolation": self.interpolation,
        }
