"""Hide-and-Seek (HaS; Singh & Lee, ICCV 2017): hide random grid patches.

Paper: "Hide-and-Seek: Forcing a Network to be Meticulous for
Weakly-supervised Object and Action Localization" (Singh & Lee), Sec. 3.1:
a training image of W x H is divided into a grid of S x S patches, each
patch hidden independently with probability p_hide = 0.5; Sec. 3.2: a hidden
pixel takes the mean RGB value of the training images, so that the expected
activation of a first-layer filter is the same in training and testing
(where nothing is hidden).  Sec. 4 ("HaS-mixed"): S drawn per image from a set
such as {0, 16, 32, 44, 56} (0: nothing hidden).

As released (clovaai/wsolevaluation wsol/method/has.py, from
kkanshul/Hide-and-Seek): the grid starts at the top-left corner, the last
row / column of patches is cut at the image border, a patch is hidden when a
uniform draw is <= drop_rate (here < hide_prob: the same up to a draw of
exactly hide_prob, and hide_prob=0 hides nothing), and the hidden value is 0 after the ImageNet
mean / std normalization, i.e. the ImageNet mean pixel.  Here images are
[0, 255] RGB (the package's model input, before the backbone's
preprocessing), so the default fill is that mean, (0.485, 0.456, 0.406) x 255.
"""

import keras
from keras import layers, ops

# torchvision's ImageNet mean (wsolevaluation data_loaders.py
# _IMAGE_MEAN_VALUE) x 255: the pixel wsolevaluation's fill 0 stands for.
IMAGENET_MEAN_RGB = (123.675, 116.28, 103.53)


def cells_to_pixels(hidden_cells, patch_size, height, width):
    """[B, n_h, n_w] per-patch values -> [B, height, width] per-pixel values.

    Patch (i, j) covers rows [i*S, min((i+1)*S, height)) and columns
    [j*S, min((j+1)*S, width)) (released has.py loop).

    Args:
        hidden_cells: [B, ceil(height / S), ceil(width / S)] tensor.
        patch_size: S, pixels per patch side (> 0).
        height: image height.
        width: image width.
    """
    pixels = ops.repeat(ops.repeat(hidden_cells, patch_size, axis=1), patch_size, axis=2)
    return pixels[:, :height, :width]


@keras.saving.register_keras_serializable(package="wsol_keras")
class HideAndSeek(layers.Layer):
    """Hides random S x S patches of [0, 255] RGB images in training.

    Call: `layer(images, training=None)` with images [B, H, W, 3]; returns the
    same shape and dtype; the identity unless training=True.

    Args:
        patch_sizes: S in pixels; one per image is drawn uniformly from this
            tuple (several: the paper's HaS-mixed; 0 hides nothing).
            wsolevaluation's `--has_grid_size` default is 4.
        hide_prob: p_hide, each patch's probability of being hidden (0.5).
        fill_value: the hidden pixels' RGB value (default the ImageNet mean,
            wsolevaluation's normalized 0); one float fills every channel.
        seed: seed of the layer's `keras.random.SeedGenerator` (None: random).
    """

    def __init__(
        self, patch_sizes=(4,), hide_prob=0.5, fill_value=IMAGENET_MEAN_RGB,
        seed=None, **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(patch_sizes, (int, float)):
            patch_sizes = (patch_sizes,)
        sizes = tuple(int(s) for s in patch_sizes)
        if not sizes or any(s < 0 for s in sizes):
            raise ValueError(
                "HideAndSeek: patch_sizes must be a non-empty tuple of pixel "
                f"sizes >= 0, got {patch_sizes!r}"
            )
        if not 0.0 <= float(hide_prob) <= 1.0:
            raise ValueError(f"HideAndSeek: hide_prob must be in [0, 1], got {hide_prob}")
        fill = (float(fill_value),) if isinstance(fill_value, (int, float)) else tuple(
            float(v) for v in fill_value
        )
        if len(fill) not in (1, 3):
            raise ValueError(
                f"HideAndSeek: fill_value must be one float or 3 (RGB), got {fill_value!r}"
            )
        self.patch_sizes = sizes
        self.hide_prob = float(hide_prob)
        self.fill_value = fill
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed, name="has_seed")

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(
                f"HideAndSeek: images must be [B, H, W, C], got shape {tuple(input_shape)}"
            )

    def apply_mask(self, images, hidden):
        """images with the pixels where `hidden` [B, H, W] is 1 set to the fill."""
        hidden = ops.cast(hidden, images.dtype)[..., None]
        fill = ops.convert_to_tensor(self.fill_value, dtype=images.dtype)
        return images * (1 - hidden) + fill * hidden

    def hidden_pixels(self, batch, height, width):
        """float32 [B, H, W]: 1 on the pixels of the hidden patches."""
        per_size = []
        for s in self.patch_sizes:
            if s == 0:
                per_size.append(ops.zeros((batch, height, width), "float32"))
                continue
            n_h, n_w = -(-height // s), -(-width // s)
            draws = keras.random.uniform((batch, n_h, n_w), seed=self.seed_generator)
            cells = ops.cast(draws < self.hide_prob, "float32")
            per_size.append(cells_to_pixels(cells, s, height, width))
        if len(per_size) == 1:
            return per_size[0]
        choice = keras.random.randint((batch,), 0, len(per_size), seed=self.seed_generator)
        one_hot = ops.one_hot(choice, len(per_size), dtype="float32")[:, :, None, None]
        return ops.sum(one_hot * ops.stack(per_size, axis=1), axis=1)

    def call(self, inputs, training=None):
        if not training:
            return inputs
        shape = ops.shape(inputs)
        height, width = inputs.shape[1], inputs.shape[2]
        if height is None or width is None:
            raise ValueError(
                "HideAndSeek: the image height and width must be static, got "
                f"shape {tuple(inputs.shape)}"
            )
        return self.apply_mask(inputs, self.hidden_pixels(shape[0], height, width))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {
            **super().get_config(),
            "patch_sizes": list(self.patch_sizes),
            "hide_prob": self.hide_prob,
            "fill_value": list(self.fill_value),
            "seed": self.seed,
        }
