"""Class activation map head (CAM, Zhou et al. 2016, as revisited in ACoL Sec. 3.1).

ACoL Sec. 3.1 shows that GAP followed by a fully connected classifier equals a
1x1 convolution to C class maps followed by GAP; computing the maps first gives
the class activation maps directly in the forward pass.
"""

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="wsol_keras")
class CAMHead(layers.Layer):
    """Optional 3x3 conv + ReLU layers, then a 1x1 conv to `num_classes` maps.

    Args:
        num_classes: number of class maps C.
        conv_filters: widths of the 3x3 conv + ReLU layers before the 1x1 conv
            (ACoL's classifier uses (1024, 1024); the plain CAM uses ()).
        kernel_initializer: initializer of every conv.
        classifier_initializer: initializer of the 1x1 classifier; None uses
            `kernel_initializer` (DGL's release initializes its linear layer
            N(0, 0.01) and its 3x3 conv He-normal).

    Call returns class maps [B, h, w, C] in float32 (the last conv runs in
    float32 under mixed precision, so logits and maps keep full precision).
    """

    def __init__(
        self,
        num_classes,
        conv_filters=(),
        kernel_initializer="he_normal",
        classifier_initializer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if int(num_classes) < 1:
            raise ValueError(f"CAMHead: num_classes must be >= 1, got {num_classes}")
        self.num_classes = int(num_classes)
        self.conv_filters = tuple(int(f) for f in conv_filters)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.classifier_initializer = (
            None
            if classifier_initializer is None
            else keras.initializers.get(classifier_initializer)
        )
        self.convs = [
            layers.Conv2D(
                f,
                3,
                padding="same",
                activation="relu",
                kernel_initializer=self.kernel_initializer,
                name=f"conv{i + 1}",
            )
            for i, f in enumerate(self.conv_filters)
        ]
        self.classifier = layers.Conv2D(
            self.num_classes,
            1,
            kernel_initializer=self.classifier_initializer or self.kernel_initializer,
            dtype="float32",
            name="classifier",
        )

    def build(self, input_shape):
        shape = tuple(input_shape)
        for conv in self.convs:
            conv.build(shape)
            shape = conv.compute_output_shape(shape)
        self.classifier.build(shape)

    def call(self, inputs, training=None):
        x = inputs
        for conv in self.convs:
            x = conv(x)
        return self.classifier(x)

    def compute_output_shape(self, input_shape):
        return (*tuple(input_shape)[:-1], self.num_classes)

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "conv_filters": list(self.conv_filters),
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "classifier_initializer": (
                None
                if self.classifier_initializer is None
                else keras.initializers.serialize(self.classifier_initializer)
            ),
        }


def global_average_logits(cams):
    """GAP over the spatial axes: [B, h, w, C] -> [B, C] logits."""
    return ops.mean(cams, axis=(1, 2))
