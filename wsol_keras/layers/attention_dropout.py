"""Attention-based Dropout Layer (ADL; Choe & Shim, CVPR 2019).

Paper: "Attention-based Dropout Layer for Weakly Supervised Object
Localization" (Choe & Shim), Sec. 3 and Fig. 2.  On a feature map F
[B, H, W, C] during training:

    * self-attention map A = the channel-wise mean of F (Sec. 3.1);
    * drop mask M_drop = 1 where A < gamma * max(A), else 0, with the
      maximum taken per image (Sec. 3.1: "the drop threshold gamma");
    * importance map M_imp = sigmoid(A) (Sec. 3.1);
    * one of the two is chosen at random, M_drop with probability
      `drop_rate` (Sec. 3.1: "the drop rate ... how frequently the drop mask
      is applied"), and F * M is the output.

At inference ADL is the identity (Sec. 3.1: "ADL is deactivated during
testing").  As released (clovaai/wsolevaluation wsol/method/adl.py, from
junsukchoe/ADL): one uniform draw u per call chooses the map for the whole
batch, M = M_drop if floor(u + drop_rate) == 1 else M_imp (i.e. with
probability `drop_rate`), and the threshold comparison is strict (<).
"""

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="wsol_keras")
class AttentionDropout(layers.Layer):
    """ADL: multiplies features by a drop mask or an importance map in training.

    Call: `layer(features, training=None)` with features [B, H, W, C]; returns
    a tensor of the same shape and dtype (the identity unless training=True).

    Args:
        drop_rate: probability of the drop mask (released default 0.75).
        drop_threshold: gamma, the fraction of each image's maximum attention
            at and above which positions are dropped (wsolevaluation
            config.py `--adl_threshold` 0.9; ADL.__init__ default 0.8).
        seed: seed of the layer's `keras.random.SeedGenerator` (None: random).
    """

    def __init__(self, drop_rate=0.75, drop_threshold=0.9, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= float(drop_rate) <= 1.0:
            raise ValueError(
                f"AttentionDropout: drop_rate must be in [0, 1], got {drop_rate}"
            )
        if not 0.0 <= float(drop_threshold) <= 1.0:
            raise ValueError(
                "AttentionDropout: drop_threshold must be in [0, 1], got "
                f"{drop_threshold}"
            )
        self.drop_rate = float(drop_rate)
        self.drop_threshold = float(drop_threshold)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed, name="adl_seed")

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(
                "AttentionDropout: features must be [B, H, W, C], got shape "
                f"{tuple(input_shape)}"
            )

    def maps(self, features):
        """(drop_mask, importance_map), float32 [B, H, W, 1] each (Sec. 3.1)."""
        attention = ops.mean(ops.cast(features, "float32"), axis=-1, keepdims=True)
        peak = ops.max(attention, axis=(1, 2, 3), keepdims=True)
        drop_mask = ops.cast(attention < self.drop_threshold * peak, "float32")
        return drop_mask, ops.sigmoid(attention)

    def select(self, features, uniform):
        """F * M with M chosen by the uniform draw `uniform` in [0, 1) (scalar):
        the drop mask when floor(uniform + drop_rate) == 1 (released
        `_select_map`)."""
        drop_mask, importance = self.maps(features)
        use_drop = ops.floor(ops.cast(uniform, "float32") + self.drop_rate)
        selected = use_drop * drop_mask + (1.0 - use_drop) * importance
        return features * ops.cast(selected, features.dtype)

    def call(self, inputs, training=None):
        if not training:
            return inputs
        uniform = keras.random.uniform((), seed=self.seed_generator)
        return self.select(inputs, uniform)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {
            **super().get_config(),
            "drop_rate": self.drop_rate,
            "drop_threshold": self.drop_threshold,
            "seed": self.seed,
        }
