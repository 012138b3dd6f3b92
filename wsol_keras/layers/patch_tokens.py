"""Vision-transformer token sequences as spatial feature maps, and input scaling.

TS-CAM (Gao et al., "TS-CAM: Token Semantic Coupled Attention Map for Weakly
Supervised Object Localization", ICCV 2021, Sec. 3.2) localizes with the
*patch* tokens of the last transformer layer: the class (and, for DeiT, the
distillation) token is dropped and the N = (H / p) * (W / p) patch tokens are
reshaped to an (H / p) x (W / p) x D map, on which a CAM head works as on a
CNN's last convolutional map.  `PatchTokensToMap` is that reshape.

`ScaleOffset` is the per-channel affine input map ``x * scale + offset`` that
keras-hub's `ImageConverter` applies (e.g. ImageNet mean / std on [0, 1]
pixels), kept in the graph so exported models take raw [0, 255] pixels.
"""

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="wsol_keras")
class PatchTokensToMap(layers.Layer):
    """[B, T, D] tokens -> [B, gh, gw, D] map of the last gh * gw (patch) tokens.

    Args:
        grid: (gh, gw), the patch grid (image height and width over the patch
            size).  The T - gh * gw leading tokens (class / distillation) are
            dropped; keras-hub's ViT and DeiT put them first.
    """

    def __init__(self, grid, **kwargs):
        super().__init__(**kwargs)
        self.grid = tuple(int(g) for g in grid)
        if len(self.grid) != 2 or min(self.grid) < 1:
            raise ValueError(f"PatchTokensToMap: grid must be two ints >= 1, got {grid}")

    def _check(self, input_shape):
        tokens = input_shape[1]
        n = self.grid[0] * self.grid[1]
        if tokens is not None and tokens < n:
            raise ValueError(
                f"PatchTokensToMap: {tokens} tokens cannot hold a "
                f"{self.grid[0]}x{self.grid[1]} patch grid ({n} tokens)"
            )

    def build(self, input_shape):
        self._check(input_shape)

    def call(self, inputs, training=None):
        n = self.grid[0] * self.grid[1]
        patches = inputs[:, -n:, :]
        return ops.reshape(patches, (-1, self.grid[0], self.grid[1], inputs.shape[-1]))

    def compute_output_shape(self, input_shape):
        self._check(input_shape)
        return (input_shape[0], self.grid[0], self.grid[1], input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "grid": list(self.grid)}


@keras.saving.register_keras_serializable(package="wsol_keras")
class ScaleOffset(layers.Layer):
    """``x * scale + offset`` per channel (keras-hub `ImageConverter`'s map).

    Args:
        scale: float or one float per channel.
        offset: float or one float per channel.
    """

    def __init__(self, scale=1.0, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        as_list = lambda v: [float(x) for x in v] if isinstance(v, (list, tuple)) else float(v)  # noqa: E731
        self.scale = as_list(scale)
        self.offset = as_list(offset)

    def call(self, inputs, training=None):
        x = ops.cast(inputs, self.compute_dtype)
        scale = ops.convert_to_tensor(self.scale, dtype=self.compute_dtype)
        offset = ops.convert_to_tensor(self.offset, dtype=self.compute_dtype)
        return x * scale + offset

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "offset": self.offset}
