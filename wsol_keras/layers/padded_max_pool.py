"""Max pooling with PyTorch's explicit, symmetric padding.

`torch.nn.MaxPool2d(kernel_size, stride, padding)` (ceil_mode=False) pads
`padding` cells of -inf on *every* side and slides a valid window:
out = floor((n + 2 * padding - kernel_size) / stride) + 1.  Keras'
`padding="same"` gives the same output size for kernel 3 / stride 2 / padding 1
(ceil(n / 2)), but places the padding differently: TF puts
floor(total / 2) cells before and the rest after, so for an even n it pads 0
before and 1 after, and every window sits one cell to the right of torch's.
The values then differ (they agree only when n is odd).  Released PyTorch WSOL
code uses such pools (ACoL's VGG16, xiaomengyc/ACoL models/vgg/vgg_v1.py
`make_layers`: 'M' = `MaxPool2d(3, stride=2, padding=1)`), so the Keras
backbone needs the explicit version to reproduce it.
"""

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="wsol_keras")
class PaddedMaxPooling2D(layers.Layer):
    """`torch.nn.MaxPool2d(pool_size, strides, padding)` on NHWC inputs.

    Args:
        pool_size: int, the square window.
        strides: int.
        padding: int, cells of -inf added on each side of H and W (torch
            requires padding <= pool_size // 2, so every window holds at least
            one input cell and the padding never wins).
    """

    def __init__(self, pool_size=3, strides=2, padding=1, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = int(pool_size)
        self.strides = int(strides)
        self.padding = int(padding)
        if self.pool_size < 1 or self.strides < 1:
            raise ValueError(
                f"PaddedMaxPooling2D: pool_size and strides must be >= 1, got "
                f"pool_size={pool_size}, strides={strides}"
            )
        if not 0 <= self.padding <= self.pool_size // 2:
            raise ValueError(
                f"PaddedMaxPooling2D: padding must be in [0, pool_size // 2] "
                f"(torch's rule), got padding={padding} for pool_size={pool_size}"
            )
        self.pool = layers.MaxPooling2D(
            self.pool_size, strides=self.strides, padding="valid"
        )

    def build(self, input_shape):
        self.pool.build(self._padded_shape(input_shape))

    def call(self, inputs, training=None):
        p = self.padding
        x = inputs
        if p:
            x = ops.pad(
                x, [[0, 0], [p, p], [p, p], [0, 0]], constant_values=float("-inf")
            )
        return self.pool(x)

    def _padded_shape(self, input_shape):
        n, h, w, c = tuple(input_shape)
        grow = lambda d: None if d is None else d + 2 * self.padding  # noqa: E731
        return (n, grow(h), grow(w), c)

    def compute_output_shape(self, input_shape):
        n, h, w, c = self._padded_shape(input_shape)
        out = lambda d: (  # noqa: E731
            None if d is None else (d - self.pool_size) // self.strides + 1
        )
        return (n, out(h), out(w), c)

    def get_config(self):
        return {
            **super().get_config(),
            "pool_size": self.pool_size,
            "strides": self.strides,
            "padding": self.padding,
        }
