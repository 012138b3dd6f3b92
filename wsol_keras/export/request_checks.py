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

FORMATS = ("JPEG", "PNG", "GIF", "BMP", "WebP")
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
# Status of a header (see `_header_*`).
OK, CUT, DAMAGED, UNBOUNDED = 0, 1, 2, 3
_MAX_JPEG_SEGMENTS = 4096  # a real JPEG has a few dozen marker segments
# Only TF ops and Python loops over constants here: AutoGraph has nothing to
# convert (and re-reading this file's source while it is edited can break it).
_plain_tf = tf.autograph.experimental.do_not_convert


def _bytes_at(data, pos, n):
    """int64 [n]: data[pos:pos + n], zero past the end (never raises)."""
    pos = tf.clip_by_value(tf.cast(pos, tf.int32), 0, tf.strings.length(data))
    piece = tf.strings.join([tf.strings.substr(data, pos, n), "\0" * n])
    return tf.cast(
        tf.io.decode_raw(tf.strings.substr(piece, 0, n), tf.uint8), tf.int64
    )


def _be(b, *idx):
    """Big-endian unsigned integer of the bytes b[idx]."""
    value = tf.constant(0, tf.int64)
    for i in idx:
        value = value * 256 + b[i]
    return value


def _le(b, *idx):
    return _be(b, *reversed(idx))


def _has_pair(data, start, first, second):
    """Whether bytes (first, second) occur in data[start:]."""
    rest = tf.io.decode_raw(
        tf.strings.substr(data, start, tf.strings.length(data)), tf.uint8
    )
    return tf.reduce_any(
        tf.logical_and(tf.equal(rest[:-1], first), tf.equal(rest[1:], second))
    )


def _header_jpeg(data, n):
    """Walks the marker segments to the first scan (T.81 B.1.1)."""

    def body(pos, h, w, sos, status, steps):
        b = _bytes_at(data, pos, 9)
        marker = b[1]
        standalone = tf.logical_or(
            tf.logical_and(marker >= 0xD0, marker <= 0xD8), tf.equal(marker, 0x01)
        )
        is_sof = tf.logical_and(
            tf.logical_and(marker >= 0xC0, marker <= 0xCF),
            tf.logical_not(
                tf.reduce_any(tf.equal(marker, tf.constant([0xC4, 0xC8, 0xCC], tf.int64)))
            ),
        )
        is_sos = tf.equal(marker, 0xDA)
        bad = tf.not_equal(b[0], 0xFF)
        h = tf.where(is_sof, _be(b, 5, 6), h)
        w = tf.where(is_sof, _be(b, 7, 8), w)
        step = tf.where(
            tf.equal(marker, 0xFF),  # fill byte before a marker
            tf.constant(1, tf.int64),
            tf.where(standalone, tf.constant(2, tf.int64), 2 + _be(b, 2, 3)),
        )
        sos = tf.where(tf.logical_and(is_sos, tf.logical_not(bad)), pos, sos)
        status = tf.where(bad, tf.constant(DAMAGED, tf.int64), status)
        return pos + step, h, w, sos, status, steps + 1

    def cond(pos, h, w, sos, status, steps):
        return tf.logical_and(
            tf.logical_and(sos < 0, tf.equal(status, OK)),
            tf.logical_and(pos + 4 <= n, steps < _MAX_JPEG_SEGMENTS),
        )

    minus1 = tf.constant(-1, tf.int64)
    _, h, w, sos, status, _ = tf.while_loop(
        cond,
        body,
        (tf.constant(2, tf.int64), minus1, minus1, minus1, tf.constant(OK, tf.int64),
         tf.constant(0, tf.int64)),
    )
    status = tf.where(
        tf.logical_and(tf.equal(status, OK), sos < 0), tf.constant(CUT, tf.int64), status
    )
    # A scan without a frame header before it cannot be decoded.
    status = tf.where(
        tf.logical_and(tf.equal(status, OK), h < 0), tf.constant(DAMAGED, tf.int64), status
    )
    complete = tf.cond(
        tf.equal(status, OK),
        lambda: _has_pair(data, tf.cast(tf.maximum(sos, 0), tf.int32), 0xFF, 0xD9),
        lambda: tf.constant(False),
    )
    return h, w, status, complete


def _header_png(data, n):
    b = _bytes_at(data, 0, 24)
    ihdr = tf.reduce_all(tf.equal(b[12:16], tf.constant(list(b"IHDR"), tf.int64)))
    status = tf.where(
        n < 33,
        tf.constant(CUT, tf.int64),
        tf.where(ihdr, tf.constant(OK, tf.int64), tf.constant(DAMAGED, tf.int64)),
    )

    def has_iend():
        rest = tf.io.decode_raw(
            tf.strings.substr(data, 33, tf.strings.length(data)), tf.uint8
        )
        hit = tf.logical_and(
            tf.logical_and(tf.equal(rest[:-3], ord("I")), tf.equal(rest[1:-2], ord("E"))),
            tf.logical_and(tf.equal(rest[2:-1], ord("N")), tf.equal(rest[3:], ord("D"))),
        )
        return tf.reduce_any(hit)

    complete = tf.cond(tf.equal(status, OK), has_iend, lambda: tf.constant(False))
    return _be(b, 20, 21, 22, 23), _be(b, 16, 17, 18, 19), status, complete


def _header_gif(data, n):
    """The canvas TF decodes to (the largest frame), not the logical screen."""
    complete, h, w, bounded = gif_blocks.walk(data, n)
    # A GIF cut before its first image is refused as truncated; its logical
    # screen only names a size in that message.
    b = _bytes_at(data, 0, 10)
    h = tf.where(complete, h, tf.maximum(h, _le(b, 8, 9)))
    w = tf.where(complete, w, tf.maximum(w, _le(b, 6, 7)))
    status = tf.where(
        n < 13,
        tf.constant(CUT, tf.int64),
        tf.where(bounded, tf.constant(OK, tf.int64), tf.constant(UNBOUNDED, tf.int64)),
    )
    return h, w, status, complete


def _header_bmp(data, n):
    b = _bytes_at(data, 0, 30)
    core = tf.equal(_le(b, 14, 15, 16, 17), 12)  # BITMAPCOREHEADER (OS/2)
    w = tf.where(core, _le(b, 18, 19), _le(b, 18, 19, 20, 21))
    h = tf.where(core, _le(b, 20, 21), _le(b, 22, 23, 24, 25))
    h = tf.where(h >= 2**31, 2**32 - h, h)  # negative height: top-down rows
    w = tf.where(w >= 2**31, tf.constant(0, tf.int64), w)
    bits = tf.where(core, _le(b, 24, 25), _le(b, 28, 29))
    status = tf.where(n < 30, tf.constant(CUT, tf.int64), tf.constant(OK, tf.int64))
    row = (bits * w + 31) // 32 * 4
    complete = n >= _le(b, 10, 11, 12, 13) + row * h
    return h, w, status, complete


def _header_webp(data, n):
    b = _bytes_at(data, 0, 30)
    chunk = b[12:16]

    def tag(text):
        return tf.reduce_all(tf.equal(chunk, tf.constant(list(text), tf.int64)))

    lossy, lossless, extended = tag(b"VP8 "), tag(b"VP8L"), tag(b"VP8X")
    bits = _le(b, 21, 22, 23, 24)
    w = tf.where(
        lossy,
        _le(b, 26, 27) % 16384,
        tf.where(lossless, bits % 16384 + 1, _le(b, 24, 25, 26) + 1),
    )
    h = tf.where(
        lossy,
        _le(b, 28, 29) % 16384,
        tf.where(lossless, bits // 16384 % 16384 + 1, _le(b, 27, 28, 29) + 1),
    )
    known = tf.logical_or(lossy, tf.logical_or(lossless, extended))
    status = tf.where(
        n < 30,
        tf.constant(CUT, tf.int64),
        tf.where(known, tf.constant(OK, tf.int64), tf.constant(DAMAGED, tf.int64)),
    )
    complete = n >= _le(b, 4, 5, 6, 7) + 8
    return h, w, status, complete


def _format_index(data):
    """0 JPEG, 1 PNG, 2 GIF, 3 BMP, 4 WebP (FORMATS order), -1 unknown."""
    b = _bytes_at(data, 0, 12)

    def starts(pos, magic):
        got = b[pos : pos + len(magic)]
        return tf.reduce_all(tf.equal(got, tf.constant(list(magic), tf.int64)))

    tests = [
        starts(0, b"\xff\xd8\xff"),
        starts(0, b"\x89PNG\r\n\x1a\n"),
        starts(0, b"GIF8"),
        starts(0, b"BM"),
        tf.logical_and(starts(0, b"RIFF"), starts(8, b"WEBP")),
    ]
    index = tf.constant(-1, tf.int32)
    for i, t in reversed(list(enumerate(tests))):
        index = tf.where(t, i, index)
    return index


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
    fmt = _format_index(data)
    h, w, status, complete = tf.switch_case(
        tf.maximum(fmt, 0) + tf.cast(fmt < 0, tf.int32) * len(FORMATS),
        [
            lambda: _header_jpeg(data, n),
            lambda: _header_png(data, n),
            lambda: _header_gif(data, n),
            lambda: _header_bmp(data, n),
            lambda: _header_webp(data, n),
            lambda: (
                tf.constant(0, tf.int64),
                tf.constant(0, tf.int64),
                tf.constant(DAMAGED, tf.int64),
                tf.constant(False),
            ),
        ],
    )
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
