"""Visual-stimulus tolerance (VST) of SLT-Net: random transform g, inverse g', L_VST.

Reference: Guo et al., "Strengthen Learning Tolerance for Weakly Supervised
Object Localization", CVPR 2022 (SLT-Net), Sec. 3.4, Eq. 10-13, Eq. 2.

* Eq. 10: ``I^t = g(I)`` with ``g`` = colour jitter (brightness, contrast,
  saturation, hue) followed by a spatial part (horizontal flip, scale).
* Eq. 11: the localizer maps both, ``M^o = f(I)``, ``M^t = f(I^t)``.
* Eq. 12: ``M^it = g'(M^t)``, the inverse of the *spatial* part only.
* Eq. 13: ``L_VST = 1/(W*H) * ||M^o - M^it||_2^2`` (sum over the C class
  channels, divided by the number of map positions), averaged over the batch.
* Eq. 2: ``L_LOC = L_SMT + beta * L_VST`` with ``beta = 10``.

The paper gives neither the jitter strengths nor the scale range, nor how the
scaled image is laid out; choices made here (documented defaults):

* Scale is a zoom about the image centre on a fixed S x S canvas, so a batch
  stays rectangular and each image can have its own factor: ``s > 1`` zooms in
  (the border of the original falls outside the view), ``s < 1`` zooms out
  (zero padding around). Flip and zoom form one affine map per image,
  ``x_t = c + s * F * (x - c)`` with ``F = diag(+-1, 1)`` and
  ``c = (size - 1) / 2`` in pixel-centre coordinates. Because the map is
  about the centre it is the same map at every resolution (CAM cell centres
  align with image pixel centres when the CAM is an integer downsampling), so
  the inverse on a CAM of size h x w uses the same ``s`` and ``F`` with
  ``c = (h - 1) / 2``, ``(w - 1) / 2`` ("rescale and align").
* Where the inverse looks outside the transformed map's field of view (the
  border cropped away by a zoom-in), the positions are excluded from Eq. 13
  through a validity mask; the normalisation stays ``1/(W*H)`` as in Eq. 13.

Everything is batched (one affine transform per image), uses keras.ops and
runs inside ``tf.function`` and under ``tf.distribute`` strategies; the
transform parameters come from a ``keras.random.SeedGenerator``.
"""

import keras
from keras import ops

__all__ = [
    "VisualStimulusTransform",
    "sample_transform_params",
    "color_jitter",
    "spatial_transform",
    "inverse_spatial_transform",
    "visual_stimulus_tolerance_loss",
]


def sample_transform_params(
    seed_generator,
    batch_size,
    brightness=0.3,
    contrast=0.3,
    saturation=0.3,
    hue=0.05,
    flip_prob=0.5,
    scale_range=(0.8, 1.2),
):
    """Samples the parameters of g (Eq. 10) independently for each image.

    Args:
        seed_generator: a ``keras.random.SeedGenerator``.
        batch_size: number of images B (int or scalar tensor).
        brightness: max additive brightness shift, as a fraction of the value
            range; delta ~ U(-brightness, brightness).
        contrast: contrast factor ~ U(1 - contrast, 1 + contrast).
        saturation: saturation factor ~ U(1 - saturation, 1 + saturation).
        hue: hue shift ~ U(-hue, hue), in turns of the colour wheel (<= 0.5).
        flip_prob: probability of a horizontal flip.
        scale_range: (min, max) zoom factor s ~ U(min, max).

    Returns:
        dict of float32 ``[B]`` tensors: ``brightness``, ``contrast``,
        ``saturation``, ``hue``, ``flip`` (1.0 flipped / 0.0 not), ``scale``.
    """
    shape = (batch_size,)

    def uniform(lo, hi):
        return keras.random.uniform(
            shape, minval=lo, maxval=hi, dtype="float32", seed=seed_generator
        )

    return {
        "brightness": uniform(-brightness, brightness),
        "contrast": uniform(1.0 - contrast, 1.0 + contrast),
        "saturation": uniform(1.0 - saturation, 1.0 + saturation),
        "hue": uniform(-hue, hue),
        "flip": ops.cast(ops.less(uniform(0.0, 1.0), flip_prob), "float32"),
        "scale": uniform(scale_range[0], scale_range[1]),
    }


def color_jitter(images, params, value_range=(0.0, 255.0)):
    """Photometric part of g: brightness, contrast, saturation, hue per image.

    Args:
        images: float ``[B, H, W, 3]`` RGB images in ``value_range``.
        params: dict from :func:`sample_transform_params`.
        value_range: (low, high) of the pixel values.

    Returns:
        float32 jittered images in ``value_range``.

    Backends: the same values on every backend, but not differentiable with
    respect to ``images`` on TensorFlow (its RGBToHSV op has no gradient); g acts
    on input images, so training never needs that gradient.
    """
    lo, hi = float(value_range[0]), float(value_range[1])
    x = (ops.cast(images, "float32") - lo) / (hi - lo)

    def per_image(v):
        return ops.reshape(v, (-1, 1, 1, 1))

    x = ops.clip(x + per_image(params["brightness"]), 0.0, 1.0)
    # Contrast about each image's per-channel mean, like tf.image.adjust_contrast.
    mean = ops.mean(x, axis=(1, 2), keepdims=True)
    x = ops.clip((x - mean) * per_image(params["contrast"]) + mean, 0.0, 1.0)
    hsv = ops.image.rgb_to_hsv(x)
    h = hsv[..., 0:1] + per_image(params["hue"])
    h = h - ops.floor(h)  # wrap around the colour wheel
    s = ops.clip(hsv[..., 1:2] * per_image(params["saturation"]), 0.0, 1.0)
    x = ops.image.hsv_to_rgb(ops.concatenate([h, s, hsv[..., 2:3]], axis=-1))
    return x * (hi - lo) + lo


def _affine_params(params, height, width, inverse):
    """Flattened [B, 8] projective transforms (output pixel -> input pixel).

    Forward g maps an original pixel x to ``c + s F (x - c)``; ``affine_transform``
    wants the output->input map, i.e. ``x = c + F (x_t - c) / s``. The inverse
    g' uses ``x_t = c + s F (x - c)`` directly.
    """
    if height is None or width is None:
        raise ValueError(
            "visual_tolerance: the spatial size of images/maps must be static; "
            f"got height={height}, width={width}."
        )
    scale = ops.cast(params["scale"], "float32")
    sign = 1.0 - 2.0 * ops.cast(params["flip"], "float32")
    m = scale if inverse else 1.0 / scale
    cx = (float(width) - 1.0) / 2.0
    cy = (float(height) - 1.0) / 2.0
    zeros = ops.zeros_like(m)
    a0 = sign * m
    a2 = cx - sign * m * cx
    b1 = m
    b2 = cy - m * cy
    return ops.stack([a0, zeros, a2, zeros, b1, b2, zeros, zeros], axis=-1)


def spatial_transform(images, params, fill_value=0.0):
    """Spatial part of g: per-image horizontal flip and zoom about the centre.

    Args:
        images: ``[B, H, W, C]`` images or maps.
        params: dict with ``flip`` and ``scale`` ``[B]`` tensors.
        fill_value: value outside the source (zoom-out padding).

    Returns:
        float32 ``[B, H, W, C]``, bilinear.
    """
    images = ops.cast(images, "float32")
    transform = _affine_params(params, images.shape[1], images.shape[2], inverse=False)
    return ops.image.affine_transform(
        images,
        transform,
        interpolation="bilinear",
        fill_mode="constant",
        fill_value=fill_value,
    )


def inverse_spatial_transform(maps, params):
    """g' of Eq. 12: undoes flip and zoom on maps of any resolution.

    Args:
        maps: ``[B, h, w, C]`` maps of the transformed images (``M^t``).
        params: the dict that was used for the forward transform.

    Returns:
        ``(maps_back, valid)``: float32 ``[B, h, w, C]`` maps aligned with the
        original image (``M^it``), and float32 ``[B, h, w, 1]`` with 1 where
        the value is interpolated only from positions that saw the original
        image and 0 elsewhere.

    Backends: the same values on TensorFlow and JAX, but the gradient differs:
    TensorFlow's registered gradient of ImageProjectiveTransformV3 (behind
    ``keras.ops.image.affine_transform``) resamples the output gradient with the
    inverse transform, which is not the exact adjoint of bilinear sampling when
    the zoom is not 1 (off by up to ~25% here against finite differences); JAX
    differentiates the sampling exactly.
    """
    maps = ops.cast(maps, "float32")
    h, w = maps.shape[1], maps.shape[2]
    inverse = _affine_params(params, h, w, inverse=True)
    forward = _affine_params(params, h, w, inverse=False)
    back = ops.image.affine_transform(
        maps, inverse, interpolation="bilinear", fill_mode="constant", fill_value=0.0
    )
    # Field of view: positions of M^t computed from original content (1 there,
    # fractional at the padding seam), then pulled back the same way as the maps.
    ones = ops.ones_like(maps[..., :1])
    seen = ops.image.affine_transform(
        ones, forward, interpolation="bilinear", fill_mode="constant", fill_value=0.0
    )
    seen_back = ops.image.affine_transform(
        seen, inverse, interpolation="bilinear", fill_mode="constant", fill_value=0.0
    )
    valid = ops.cast(ops.greater(seen_back, 1.0 - 1e-3), "float32")
    return back, ops.stop_gradient(valid)


def visual_stimulus_tolerance_loss(cams_original, cams_back, valid=None):
    """L_VST of Eq. 13, averaged over the batch.

    ``L_VST = 1/(W*H) * sum_{w,h,c} valid * (M^o - M^it)^2`` per image.

    Args:
        cams_original: ``M^o``, ``[B, h, w, C]``.
        cams_back: ``M^it`` from :func:`inverse_spatial_transform`.
        valid: optional ``[B, h, w, 1]`` mask.

    Returns:
        float32 scalar.
    """
    diff = ops.square(
        ops.cast(cams_original, "float32") - ops.cast(cams_back, "float32")
    )
    if valid is not None:
        diff = diff * ops.cast(valid, "float32")
    num_positions = float(diff.shape[1] * diff.shape[2])
    return ops.mean(ops.sum(diff, axis=(1, 2, 3)) / num_positions)


@keras.saving.register_keras_serializable(package="wsol_keras")
class VisualStimulusTransform(keras.layers.Layer):
    """The random transform g of SLT-Net (Eq. 10) with its inverse g' (Eq. 12).

    ``layer(images)`` samples one set of parameters per image from the layer's
    ``SeedGenerator`` and returns ``(transformed_images, params)``; pass the
    same ``params`` to :meth:`inverse` with the CAMs of the transformed images.

    Args:
        brightness, contrast, saturation, hue, flip_prob, scale_range: see
            :func:`sample_transform_params`.
        value_range: pixel value range of the images, (0, 255) by default.
        seed: optional int seed of the SeedGenerator.
    """

    def __init__(
        self,
        brightness=0.3,
        contrast=0.3,
        saturation=0.3,
        hue=0.05,
        flip_prob=0.5,
        scale_range=(0.8, 1.2),
        value_range=(0.0, 255.0),
        seed=None,
        **kwargs,
    ):
        # Pixel values and maps stay float32 under mixed precision.
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        for name, value in (
            ("brightness", brightness),
            ("contrast", contrast),
            ("saturation", saturation),
        ):
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(
                    f"VisualStimulusTransform: {name} must be in [0, 1]; got {value!r}."
                )
        if not 0.0 <= float(hue) <= 0.5:
            raise ValueError(
                f"VisualStimulusTransform: hue must be in [0, 0.5]; got {hue!r}."
            )
        if not 0.0 <= float(flip_prob) <= 1.0:
            raise ValueError(
                f"VisualStimulusTransform: flip_prob must be in [0, 1]; got {flip_prob!r}."
            )
        scale_range = tuple(float(v) for v in scale_range)
        if len(scale_range) != 2 or not 0.0 < scale_range[0] <= scale_range[1]:
            raise ValueError(
                "VisualStimulusTransform: scale_range must be (min, max) with "
                f"0 < min <= max; got {scale_range!r}."
            )
        value_range = tuple(float(v) for v in value_range)
        if len(value_range) != 2 or value_range[0] >= value_range[1]:
            raise ValueError(
                f"VisualStimulusTransform: bad value_range {value_range!r}."
            )
        self.brightness = float(brightness)
        self.contrast = float(contrast)
        self.saturation = float(saturation)
        self.hue = float(hue)
        self.flip_prob = float(flip_prob)
        self.scale_range = scale_range
        self.value_range = value_range
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed, name="vst_seed")
        # No weights: built at construction, like keras.layers.Dropout (its only
        # state, the seed, exists already).
        self.built = True

    def sample(self, batch_size):
        """Per-image parameters (see :func:`sample_transform_params`)."""
        return sample_transform_params(
            self.seed_generator,
            batch_size,
            brightness=self.brightness,
            contrast=self.contrast,
            saturation=self.saturation,
            hue=self.hue,
            flip_prob=self.flip_prob,
            scale_range=self.scale_range,
        )

    def apply(self, images, params):
        """g(I) with given parameters: colour jitter, then flip and zoom."""
        x = color_jitter(images, params, self.value_range)
        return spatial_transform(x, params, fill_value=self.value_range[0])

    def call(self, images, training=None):
        params = self.sample(ops.shape(images)[0])
        return self.apply(images, params), params

    def inverse(self, maps, params):
        """g'(M^t) (Eq. 12); returns ``(maps_back, valid_mask)``."""
        return inverse_spatial_transform(maps, params)

    def compute_output_shape(self, input_shape):
        batch = (input_shape[0],)
        params = {
            k: batch
            for k in ("brightness", "contrast", "saturation", "hue", "flip", "scale")
        }
        return tuple(input_shape), params

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "brightness": self.brightness,
                "contrast": self.contrast,
                "saturation": self.saturation,
                "hue": self.hue,
                "flip_prob": self.flip_prob,
                "scale_range": self.scale_range,
                "value_range": self.value_range,
                "seed": self.seed,
            }
        )
        return config
