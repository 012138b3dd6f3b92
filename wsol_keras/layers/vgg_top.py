"""VGG16's own classifier top (fc6, fc7) on a conv5_3 feature map.

Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale
Image Recognition", ICLR 2015, Sec. 2.1 / Table 1 (configuration D): after
conv5_3 come the fifth 2x2 max pool and two fully connected layers of 4096
channels with ReLU, each followed by dropout 0.5 in training (Sec. 3.1); the
third FC layer (1000 ImageNet classes) is what a fine-tuning replaces.

Used by SLT-Net's classifier (Guo et al., "Strengthen Learning Tolerance for
Weakly Supervised Object Localization", CVPR 2022, Sec. 4.2: VGG16 with its
1000-way output replaced by a 200-way one).

Layout follows the released torchvision VGG (torchvision/models/vgg.py):
``features`` (ending with the 2x2 max pool, Keras' ``block5_pool``) ->
``AdaptiveAvgPool2d((7, 7))`` -> flatten -> Linear(25088, 4096) -> ReLU ->
Dropout(0.5) -> Linear(4096, 4096) -> ReLU -> Dropout(0.5).  The adaptive
pool is the identity at 224x224 inputs (block5_pool is 7x7 there), so the
pretrained fc6 sees exactly what it was trained on; other input sizes still
give the 7x7x512 input it needs (and tiny test images can exercise the head).
Keras' ``keras.applications.VGG16(include_top=True)`` has neither the
adaptive pool (it requires 224x224) nor the dropout layers; its ``fc1`` /
``fc2`` layers carry the ImageNet weights this layer takes over by name
(`transfer_vgg16_top`).  The flatten is Keras' channels-last order, the order
those Keras weights were converted to.
"""

import math

import keras
import numpy as np
from keras import layers, ops

# torchvision's VGG: AdaptiveAvgPool2d((7, 7)) before the classifier.
POOLED_SIZE = 7
FC_UNITS = 4096
DROPOUT = 0.5
TOP_LAYER_NAMES = ("fc1", "fc2")  # keras.applications.VGG16's fc6 / fc7


def adaptive_pool_matrix(size, out_size=POOLED_SIZE):
    """[out_size, size] averaging matrix of torch's adaptive average pool.

    Bin i covers [floor(i * size / out), ceil((i + 1) * size / out)), as
    torch's AdaptiveAvgPool2d (aten/src/ATen/native/AdaptiveAveragePooling.cpp
    start_index / end_index); bins may overlap or repeat when size < out.
    """
    m = np.zeros((out_size, size), np.float32)
    for i in range(out_size):
        start = (i * size) // out_size
        end = math.ceil((i + 1) * size / out_size)
        m[i, start:end] = 1.0 / (end - start)
    return m


@keras.saving.register_keras_serializable(package="wsol_keras")
class VGG16Top(layers.Layer):
    """block5_pool -> adaptive avg pool to 7x7 -> flatten -> fc1 -> fc2.

    Args:
        units: width of fc1 / fc2 (VGG16: 4096; ImageNet weights need it).
        dropout: rate after each ReLU in training (VGG16 Sec. 3.1: 0.5).
        pretrained: "imagenet" copies keras.applications.VGG16's fc1 / fc2
            weights when the layer is built (the input must then have 512
            channels, VGG16's conv5_3); None keeps the Glorot initialization
            Keras' VGG16 uses.

    Call: conv5_3 features [B, h, w, F] (h, w >= 2) -> [B, units].
    """

    def __init__(self, units=FC_UNITS, dropout=DROPOUT, pretrained=None, **kwargs):
        super().__init__(**kwargs)
        if pretrained not in (None, "imagenet"):
            raise ValueError(
                f"VGG16Top: pretrained={pretrained!r}; use 'imagenet' or None"
            )
        if pretrained and int(units) != FC_UNITS:
            raise ValueError(
                f"VGG16Top: units={units} cannot take ImageNet weights "
                f"(VGG16's fc layers have {FC_UNITS})"
            )
        self.units = int(units)
        self.dropout = float(dropout)
        self.pretrained = pretrained
        self.pool5 = layers.MaxPooling2D(2, name="block5_pool")
        self.flatten = layers.Flatten(name="flatten")
        self.fc1 = layers.Dense(self.units, activation="relu", name="fc1")
        self.drop1 = layers.Dropout(self.dropout, name="drop1")
        self.fc2 = layers.Dense(self.units, activation="relu", name="fc2")
        self.drop2 = layers.Dropout(self.dropout, name="drop2")

    def build(self, input_shape):
        h, w, channels = input_shape[1], input_shape[2], input_shape[3]
        if h is None or w is None or h < 2 or w < 2:
            raise ValueError(
                f"VGG16Top: the backbone's feature map is {h}x{w}; block5_pool "
                "(2x2) needs at least 2x2: config.data.image_size is too small "
                "for the 'vgg_fc' classifier head (VGG16: at least 32)"
            )
        ph, pw = h // 2, w // 2
        self._pool_h = adaptive_pool_matrix(ph)
        self._pool_w = adaptive_pool_matrix(pw)
        self.fc1.build((None, POOLED_SIZE * POOLED_SIZE * channels))
        self.fc2.build((None, self.units))
        if self.pretrained == "imagenet":
            if channels != 512:
                raise ValueError(
                    f"VGG16Top: pretrained='imagenet' needs VGG16's 512 conv5_3 "
                    f"channels, got {channels}: config.model.backbone must be "
                    "'vgg16'"
                )
            source = keras.applications.VGG16(include_top=True, weights="imagenet")
            transfer_vgg16_top(self, source)
            del source

    def pooled(self, inputs):
        """block5_pool then the adaptive 7x7 average pool: [B, 7, 7, F]."""
        x = self.pool5(inputs)
        ph = ops.convert_to_tensor(self._pool_h, dtype=x.dtype)
        pw = ops.convert_to_tensor(self._pool_w, dtype=x.dtype)
        return ops.einsum("ih,bhwc,jw->bijc", ph, x, pw)

    def call(self, inputs, training=None):
        x = self.flatten(self.pooled(inputs))
        x = self.drop1(self.fc1(x), training=training)
        return self.drop2(self.fc2(x), training=training)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.units)

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "dropout": self.dropout,
            "pretrained": self.pretrained,
        }


def transfer_vgg16_top(top, source):
    """Copies `source`'s layers "fc1" / "fc2" (keras.applications.VGG16 with
    include_top=True) into `top`'s, after checking every shape.

    Raises:
        ValueError naming the layer, the variable and both shapes.
    """
    pairs = []
    for name in TOP_LAYER_NAMES:
        src = source.get_layer(name)
        dst = getattr(top, name)
        for s, d in zip(src.weights, dst.weights, strict=True):
            if tuple(s.shape) != tuple(d.shape):
                raise ValueError(
                    f"VGG16 top: {source.name}'s {s.path} has shape "
                    f"{tuple(s.shape)}, this head's {d.path} {tuple(d.shape)}"
                )
            pairs.append((s, d))
    for s, d in pairs:  # all checked first: no half-copied top
        d.assign(s)
