"""Encoded-image headers in graph ops: the format from its magic number, and
height x width, a status and completeness read from the header alone.

Used by `wsol_keras.export.request_checks`, which turns them into the
request's assertions and messages (the format layouts are listed there).
"""

import tensorflow as tf

from wsol_keras.export import gif_blocks

FORMATS = ("JPEG", "PNG", "GIF", "BMP", "WebP")
# Status of a header (see `_header_*`).
OK, CUT, DAMAGED, UNBOUNDED, UNSUPPORTED = 0, 1, 2, 3, 4
# Bits per pixel TF's BMP decoder reads (it takes bits / 8 as the channels).
BMP_BITS = (8, 24, 32)
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


def bmp_bits(data):
    """Bits per pixel of a BMP header (core or info header)."""
    b = _bytes_at(data, 0, 30)
    core = tf.equal(_le(b, 14, 15, 16, 17), 12)  # BITMAPCOREHEADER (OS/2)
    return tf.where(core, _le(b, 24, 25), _le(b, 28, 29))


def _webp_animated(data):
    """The animation flag of an extended (VP8X) WebP header."""
    b = _bytes_at(data, 0, 21)
    vp8x = tf.reduce_all(tf.equal(b[12:16], tf.constant(list(b"VP8X"), tf.int64)))
    return tf.logical_and(vp8x, tf.equal(b[20] // 2 % 2, 1))


def _header_bmp(data, n):
    b = _bytes_at(data, 0, 30)
    core = tf.equal(_le(b, 14, 15, 16, 17), 12)  # BITMAPCOREHEADER (OS/2)
    w = tf.where(core, _le(b, 18, 19), _le(b, 18, 19, 20, 21))
    h = tf.where(core, _le(b, 20, 21), _le(b, 22, 23, 24, 25))
    h = tf.where(h >= 2**31, 2**32 - h, h)  # negative height: top-down rows
    w = tf.where(w >= 2**31, tf.constant(0, tf.int64), w)
    bits = bmp_bits(data)
    readable = tf.reduce_any(tf.equal(bits, tf.constant(BMP_BITS, tf.int64)))
    status = tf.where(
        n < 30,
        tf.constant(CUT, tf.int64),
        tf.where(readable, tf.constant(OK, tf.int64), tf.constant(UNSUPPORTED, tf.int64)),
    )
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
        tf.where(
            known,
            tf.where(
                _webp_animated(data),
                tf.constant(UNSUPPORTED, tf.int64),
                tf.constant(OK, tf.int64),
            ),
            tf.constant(DAMAGED, tf.int64),
        ),
    )
    complete = n >= _le(b, 4, 5, 6, 7) + 8
    return h, w, status, complete


def format_index(data):
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


@_plain_tf
def read_header(data, n, fmt):
    """(height, width, status, complete) of one encoded image of `n` bytes in
    format `fmt` (`format_index`; -1: unknown, status DAMAGED)."""
    return tf.switch_case(
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
