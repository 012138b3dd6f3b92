"""Divergent activation head of DANet (Xue et al., ICCV 2019).

Paper: "DANet: Divergent Activation for Weakly Supervised Object Localization" (Xue et al.),
Sec. 3.1 (class activation
maps), Sec. 3.2 (HDA Eq. 3, DDA Eq. 4) and Sec. 3.3 (network). One head per
hierarchy level: 3x3 conv + ReLU, 3x3 conv + ReLU, then a 1x1 conv to C_h * K
activation maps A_c^k (K maps per class, Sec. 3.2 "a single class activation
map is first expanded to K activation maps"). The class map of a level is the
mean of its K maps (Sec. 3.3 "the K activation maps for each class are
averaged"), its GAP gives the level's logits. The losses live in
`wsol_keras.losses.hierarchical` (HDA) and `wsol_keras.losses.discrepancy`
(DDA).

Channel layout follows the released code (xuehaolan/DANet, vgg_DA.py, which
views the 1x1 conv output as [B, C, K, h, w]): channel c * K + k is map k of
class c.
"""

import keras
from keras import layers, ops

from wsol_keras.layers.cam_head import CAMHead


def split_class_maps(maps, num_classes, num_maps):
    """[B, h, w, C * K] (class-major) -> [B, h, w, C, K]."""
    shape = ops.shape(maps)
    return ops.reshape(maps, (shape[0], shape[1], shape[2], num_classes, num_maps))


def localization_maps(multi_maps):
    """Test-time class maps: mean over K of the ReLU'd maps, [B,h,w,C,K] -> [B,h,w,C].

    As the released code's get_*_maps (torch.mean(F.relu(maps), dim=2)).
    """
    return ops.mean(ops.relu(multi_maps), axis=-1)


@keras.saving.register_keras_serializable(package="wsol_keras")
class DivergentActivation(layers.Layer):
    """One DANet head level: K activation maps per class, class maps and logits.

    Call on features [B, h, w, F] returns a dict:
      "maps":       float32 [B, h, w, C, K]  the activation maps A_c^k (Sec. 3.1)
      "class_maps": float32 [B, h, w, C]     mean over k of A_c^k (Sec. 3.3)
      "logits":     float32 [B, C]           GAP of the class maps (Sec. 3.1)
    The 1x1 conv runs in float32 under mixed precision so maps, logits and the
    losses built on them keep full precision.

    Args:
        num_classes: classes C_h of this hierarchy level.
        num_maps: K activation maps per class (paper: K = 8, Fig. 6a).
        conv_filters: widths of the 3x3 conv + ReLU layers (released code: (512,
          512) on pool3 features, (1024, 1024) on pool4 and conv5_3).
        kernel_initializer: initializer of every conv (released: Xavier uniform).
    """

    def __init__(
        self,
        num_classes,
        num_maps=8,
        conv_filters=(1024, 1024),
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if int(num_classes) < 1:
            raise ValueError(
                f"DivergentActivation: num_classes must be >= 1, got {num_classes}"
            )
        if int(num_maps) < 1:
            raise ValueError(
                f"DivergentActivation: num_maps must be >= 1, got {num_maps}"
            )
        self.num_classes = int(num_classes)
        self.num_maps = int(num_maps)
        self.conv_filters = tuple(int(f) for f in conv_filters)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        # The K maps per class come out of one CAM head with C * K channels.
        self.head = CAMHead(
            self.num_classes * self.num_maps,
            conv_filters=self.conv_filters,
            kernel_initializer=self.kernel_initializer,
            name="head",
        )

    def build(self, input_shape):
        shape = tuple(input_shape)
        if len(shape) != 4:
            raise ValueError(
                "DivergentActivation: features must be [B, h, w, F], "
                f"got shape {shape}"
            )
        self.head.build(shape)

    def call(self, inputs, training=None):
        maps = split_class_maps(self.head(inputs), self.num_classes, self.num_maps)
        class_maps = ops.mean(maps, axis=-1)
        return {
            "maps": maps,
            "class_maps": class_maps,
            "logits": ops.mean(class_maps, axis=(1, 2)),
        }

    def compute_output_shape(self, input_shape):
        b, h, w = tuple(input_shape)[:3]
        return {
            "maps": (b, h, w, self.num_classes, self.num_maps),
            "class_maps": (b, h, w, self.num_classes),
            "logits": (b, self.num_classes),
        }

    def compute_output_spec(self, inputs, training=None):
        shapes = self.compute_output_shape(inputs.shape)
        return {k: keras.KerasTensor(s, dtype="float32") for k, s in shapes.items()}

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "num_maps": self.num_maps,
            "conv_filters": list(self.conv_filters),
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        }
