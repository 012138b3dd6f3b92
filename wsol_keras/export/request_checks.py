"""Checks of a serving request before anything is decoded (pure TF ops).

A SavedModel request is untrusted: an encoded image may be empty, not an
image, cut short, or a few kilobytes that declare 20000 x 20000 pixels
(decoding that costs 1.2-1.9 GB). The decoders' own errors name neither the
batch position nor the size, and an error message that echoes request bytes
reaches a Python caller as a UnicodeDecodeError instead of INVALID_ARGUMENT.
So each element is checked here first, from its header alone:

    length -> format (magic number) -> header (height x width, read without
    decoding: JPEG frame header, PNG IHDR, BMP info header, WebP VP8 /
    VP8L / VP8X; GIF: the largest image descriptor of any frame, the canvas
    TF decodes to, never the logical screen) -> size >= 1 x 1 -> H x W <= the pixel
    limit -> the data is complete (JPEG: an end-of-image marker after the
    first scan; PNG: an IEND chunk; BMP: every row its header declares;
    WebP: the RIFF size; GIF: a walk of its blocks reaches the end of the
    first image block, which is what the TF decoder needs, see
    `wsol_keras.export.gif_blocks`; linear in bytes; a GIF of more blocks
    than the walk's bound is refused, its canvas being unknown).

and a failed check raises InvalidArgumentError whose message names the batch
position, the size and what is wrong, in printable ASCII only (at most the
hex of the first 8 bytes). Damage these checks cannot see (a corrupt
entropy-coded segment inside a complete JPEG, a bad zlib stream inside a
complete PNG, bad LZW data inside a complete GIF image block, a GIF with no
image block) still ends in the decoder's own InvalidArgumentError, which names no batch position (a graph
cannot catch an op's error to add one).

Format layouts: JPEG (ITU-T T.81, Annex B: marker segments, SOFn carries
height then width), PNG (RFC 2083 / ISO 15948: IHDR width then height,
big-endian), GIF89a (sections 17-20: the block structure; each image descriptor's
width then height, little-endian), BMP
(BITMAPCOREHEADER / BITMAPINFOHEADER), WebP (RIFF container; VP8 key frame
header, VP8L header bits, VP8X canvas size).
"""

import tensorflow as tf

from wsol_keras.export import gif_blocks
from wsol_keras.export import image_headers
from wsol_keras.export.image_headers import (
    CUT,
    DAMAGED,
    FORMATS,
    UNBOUNDED,
    UNSUPPORTED,
)

_EXPECTED = "an encoded JPEG, PNG, GIF, BMP or WebP image"
# Why the data of each format is judged incomplete (FORMATS order).
_TRUNCATION = (
    "no end-of-image marker (ff d9) after its first scan",
    "no IEND chunk",
    "it ends inside its first image block (before the 0-length sub-block that "
    "closes it)",
    "shorter than the rows its header declares",
    "shorter than the RIFF size in its header",
)
_HEX = [f"{i:02x}" for i in range(256)]
# Only TF ops and Python loops over constants here: AutoGraph has nothing to
# convert (and re-reading this file's source while it is edited can break it).
_plain_tf = tf.autograph.experimental.do_not_convert


def _s(x):
    return tf.strings.as_string(x)


def _first(pairs, default):
    """The message of the first (failed, message) pair, else default."""
    out = default
    for failed, message in reversed(pairs):
        out = tf.where(failed, message, out)
    return out


@_plain_tf
def check_encoded_image(data, index, max_pixels):
    """An Assert op on one encoded image (scalar string) at batch position index.

    Returns:
        (assert_op, height, width): height and width int64 from the header
        (meaningless when the assertion fails).
    """
    n = tf.cast(tf.strings.length(data), tf.int64)
    fmt = image_headers.format_index(data)
    h, w, status, complete = image_headers.read_header(data, n, fmt)
    name = tf.gather(tf.constant(FORMATS + ("?",)), tf.where(fmt < 0, len(FORMATS), fmt))
    where = tf.strings.join(["image_bytes: images[", _s(index), "]"])
    size = tf.strings.join([_s(n), " bytes"])
    hw = tf.strings.join([_s(h), " x ", _s(w), " (height x width)"])
    first = tf.io.decode_raw(tf.strings.substr(data, 0, 8), tf.uint8)
    hex_head = tf.strings.reduce_join(
        tf.gather(tf.constant(_HEX), tf.cast(first, tf.int32)), separator=" "
    )
    # Clamped so that a header of 2^32 - 1 x 2^32 - 1 cannot overflow int64.
    pixels = tf.minimum(h, 2**31) * tf.minimum(w, 2**31)
    limit = tf.constant(int(max_pixels), tf.int64)
    failures = [
        (
            tf.equal(n, 0),
            tf.strings.join([where, " is an empty string; expected ", _EXPECTED]),
        ),
        (
            fmt < 0,
            tf.strings.join(
                [where, " (", size, ", starting ", hex_head, ") is not ", _EXPECTED]
            ),
        ),
        (
            tf.equal(status, CUT),
            tf.strings.join(
                [where, ": truncated ", name, " (", size,
                 "): it ends before the header gives the image size"]
            ),
        ),
        (
            tf.equal(status, DAMAGED),
            tf.strings.join(
                [where, ": damaged ", name, " header (", size,
                 "): no readable image size"]
            ),
        ),
        (
            tf.equal(status, UNBOUNDED),
            tf.strings.join(
                [where, ": ", name, " (", size, ") with more than ",
                 _s(gif_blocks.MAX_BLOCKS), " blocks: its frame sizes cannot be "
                 "checked before decoding"]
            ),
        ),
        (
            tf.equal(status, UNSUPPORTED),
            tf.strings.join(
                [where, " (", size, "): ",
                 tf.where(
                     tf.equal(fmt, FORMATS.index("BMP")),
                     tf.strings.join(
                         [_s(image_headers.bmp_bits(data)), "-bit BMP; the decoder reads 8, 24 or "
                          "32 bits per pixel (save it as 24-bit)"]
                     ),
                     "animated WebP; send one frame (a still WebP, PNG or JPEG)",
                 )]
            ),
        ),
        (
            tf.logical_or(h < 1, w < 1),
            tf.strings.join(
                [where, ": the ", name, " header declares ", hw,
                 "; an image needs at least 1 x 1"]
            ),
        ),
        (
            pixels > limit,
            tf.strings.join(
                [where, ": ", name, " of ", hw, " = ", _s(pixels),
                 " pixels exceeds the limit of ", _s(limit),
                 " pixels (max_image_pixels, set at export); rejected before decoding"]
            ),
        ),
        (
            tf.logical_not(complete),
            tf.strings.join(
                [where, ": truncated ", name, " of ", hw, " (", size, "): ",
                 tf.gather(tf.constant(_TRUNCATION), tf.maximum(fmt, 0))]
            ),
        ),
    ]
    failed = tf.reduce_any([f for f, _ in failures])
    message = _first(failures, tf.constant(""))
    return tf.debugging.Assert(tf.logical_not(failed), [message]), h, w


@_plain_tf
def check_encoded_batch(encoded):
    """Assert op on an image_bytes request (any shape): string [B], B >= 1."""
    shape = tf.shape(encoded)
    shape_text = tf.strings.join(
        ["[", tf.strings.reduce_join(_s(shape), separator=","), "]"]
    )
    rank = tf.size(shape)
    failures = [
        (
            tf.not_equal(rank, 1),
            tf.strings.join(
                ["image_bytes: images has shape ", shape_text, " (rank ", _s(rank),
                 "); expected string [B], one encoded image per element (one "
                 "image is a batch of 1)"]
            ),
        ),
        (
            tf.equal(tf.reduce_prod(shape), 0),
            "image_bytes: empty batch (0 images); send at least one image",
        ),
    ]
    failed = tf.reduce_any([f for f, _ in failures])
    return tf.debugging.Assert(
        tf.logical_not(failed), [_first(failures, tf.constant(""))]
    )


@_plain_tf
def check_image_tensor(images, max_pixels):
    """Assert op on an image_tensor request (any rank): uint8 [B, H, W, 3],
    B >= 1, H, W >= 1 and H x W <= max_pixels, named in the message."""
    shape = tf.cast(tf.shape(images), tf.int64)
    rank = tf.size(shape)
    shape_text = tf.strings.join(
        ["[", tf.strings.reduce_join(_s(shape), separator=","), "]"]
    )
    dims = tf.concat([shape, tf.zeros([4], tf.int64)], 0)[:4]  # safe at any rank
    b, h, w, c = dims[0], dims[1], dims[2], dims[3]
    where = tf.strings.join(["image_tensor: images has shape ", shape_text])
    hw = tf.strings.join([_s(h), " x ", _s(w), " (height x width)"])
    limit = tf.constant(int(max_pixels), tf.int64)
    failures = [
        (
            tf.not_equal(rank, 4),
            tf.strings.join(
                [where, " (rank ", _s(rank), "); expected uint8 [B, H, W, 3] RGB "
                 "(one image is a batch of 1: add a leading axis)"]
            ),
        ),
        (
            tf.equal(b, 0),
            tf.strings.join(
                ["image_tensor: empty batch (0 images); images has shape ",
                 shape_text, "; send at least one image"]
            ),
        ),
        (
            tf.not_equal(c, 3),
            tf.strings.join(
                [where, ": expected 3 channels (RGB) in the last axis, got ", _s(c)]
            ),
        ),
        (
            tf.logical_or(h < 1, w < 1),
            tf.strings.join(
                [where, ": images of ", hw, "; each needs at least 1 x 1"]
            ),
        ),
        (
            h * w > limit,  # tensor dimensions: no overflow
            tf.strings.join(
                [where, ": images of ", hw, " = ", _s(h * w),
                 " pixels exceed the limit of ", _s(limit),
                 " pixels (max_image_pixels, set at export)"]
            ),
        ),
    ]
    failed = tf.reduce_any([f for f, _ in failures])
    return tf.debugging.Assert(
        tf.logical_not(failed), [_first(failures, tf.constant(""))]
    )
