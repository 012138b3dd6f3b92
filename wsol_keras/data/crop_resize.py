"""The S x S crop of an image resized to big x big, from the crop's window only.

The papers' training input resizes the whole original (h x w) to big x big
(256) and then takes a random S x S (224) crop at (ox, oy) (wsolevaluation,
Choe et al. 2020: ``Resize((256, 256))``, ``RandomCrop(224)``). A separable
resize is linear, and output pixel o of an n -> big resize reads only the input
pixels whose centres lie within the filter's support around the sample
position (o + 0.5) * n / big. So the crop equals the resize computed for the
crop's outputs alone, from the window of the original under those supports:

* ``crop_window`` gives that window (support plus one pixel of margin, clipped
  to the image), so no pixel with non-zero weight is left out and the clipped
  edges are the image's own edges, where the kernel is renormalized the same;
* JPEGs are decoded only inside the window (``tf.io.decode_and_crop_jpeg``);
  other formats are decoded whole and sliced;
* ``tf.raw_ops.ScaleAndTranslate`` (the kernel behind ``tf.image.resize``'s
  antialiased path: triangle filter widened by the downscale factor, as PIL's
  bilinear resize) evaluates the S x S outputs with the full image's scale and
  a translation that puts output 0 at the crop's origin.

The result equals resize-then-crop up to float rounding of the sample
positions (tests: within 1 grey level after rounding, on a handful of pixels),
while the filter runs over S^2 instead of big^2 outputs and the decoder skips
what lies outside the window.
"""

from __future__ import annotations

import tensorflow as tf


def _axis_window(n, big: int, offset, s: int, antialias: bool):
    """(start, length) of the input pixels that outputs offset..offset+s-1 read."""
    n_f = tf.cast(n, tf.float32)
    step = n_f / big  # input pixels per output pixel
    radius = tf.maximum(step, 1.0) if antialias else tf.constant(1.0)
    first = (tf.cast(offset, tf.float32) + 0.5) * step - radius
    last = (tf.cast(offset + s, tf.float32) - 0.5) * step + radius
    start = tf.maximum(tf.cast(tf.floor(first), tf.int32) - 2, 0)
    stop = tf.minimum(tf.cast(tf.math.ceil(last), tf.int32) + 2, tf.cast(n, tf.int32))
    return start, stop - start


def crop_window(height, width, big: int, ox, oy, s: int, antialias: bool = True):
    """int32 [4] (y0, x0, window height, window width) of the original."""
    y0, wh = _axis_window(height, big, oy, s, antialias)
    x0, ww = _axis_window(width, big, ox, s, antialias)
    return tf.stack([y0, x0, wh, ww])


def decode_window(contents, window_fn):
    """Decodes the window ``window_fn(h, w)`` of an encoded image (RGB uint8).

    Returns (window [wh, ww, 3], h, w, y0, x0) with (h, w) the full size.
    """

    def jpeg():
        shape = tf.image.extract_jpeg_shape(contents)
        h, w = shape[0], shape[1]
        window = window_fn(h, w)
        image = tf.io.decode_and_crop_jpeg(contents, window, channels=3)
        return image, h, w, window[0], window[1]

    def other():
        image = tf.io.decode_image(
            contents, channels=3, expand_animations=False, dtype=tf.uint8
        )
        shape = tf.shape(image)
        h, w = shape[0], shape[1]
        window = window_fn(h, w)
        image = tf.slice(image, tf.stack([window[0], window[1], 0]),
                         tf.stack([window[2], window[3], 3]))
        return image, h, w, window[0], window[1]

    image, h, w, y0, x0 = tf.cond(tf.io.is_jpeg(contents), jpeg, other)
    return tf.ensure_shape(image, [None, None, 3]), h, w, y0, x0


def resize_window(window, height, width, y0, x0, big: int, ox, oy, s: int,
                  antialias: bool = True):
    """float32 [s, s, 3]: crop (ox, oy, s) of the full image resized to big x big,
    computed from ``window`` (the original's pixels from row y0, column x0)."""
    scale = tf.cast(big, tf.float32) / tf.cast(tf.stack([height, width]), tf.float32)
    origin = tf.cast(tf.stack([y0, x0]), tf.float32)
    offset = tf.cast(tf.stack([oy, ox]), tf.float32)
    out = tf.raw_ops.ScaleAndTranslate(
        images=window[None],
        size=tf.constant([s, s], tf.int32),
        scale=scale,
        translation=origin * scale - offset,
        kernel_type="triangle",
        antialias=antialias,
    )
    return out[0]


def decode_resized_crop(contents, big: int, ox, oy, s: int, antialias: bool = True):
    """(float32 [s, s, 3] crop of the image resized to big x big, h, w)."""
    window, h, w, y0, x0 = decode_window(
        contents, lambda h, w: crop_window(h, w, big, ox, oy, s, antialias)
    )
    return resize_window(window, h, w, y0, x0, big, ox, oy, s, antialias), h, w
