"""Whether an encoded GIF holds its complete first image (pure TF ops).

Serving checks each request image before decoding (`request_checks`); for a
GIF that means walking its blocks (GIF89a specification, sections 17-20) up
to the end of the first image, which is what TF's decoder needs.
"""

import tensorflow as tf

# A real GIF has a few extension blocks before its first image. Per loop step,
# sub-blocks are followed through a run of up to RUN_PROBE full (255-byte)
# ones, then through WINDOW bytes (a power of 2).
MAX_BLOCKS = 256
RUN_PROBE = 4096
WINDOW = 2048


def first_image_complete(data, n):
    """Whether the GIF block walk reaches the end of the first image.

    GIF89a sections 17-20: after the screen descriptor (and the global color
    table its packed byte declares) come blocks: 0x21 extension (label, then
    data sub-blocks [length][length bytes], closed by a 0-length one), 0x2C
    image (9 more descriptor bytes, a local color table if flagged, the LZW
    code size byte, then sub-blocks closed by a 0 byte), 0x3B trailer. The
    TF decoder (giflib's DGifSlurp) decodes a GIF iff its first image block
    is complete, up to and including that closing 0 byte: it takes a missing
    trailer, a later frame cut short or junk after the first image (measured,
    TF 2.21). So the walk stops there; a read past the end before it is a
    cut. A trailer or unknown byte where a block should start is damage, not
    a cut: left to the decoder, as is a GIF with more than MAX_BLOCKS
    blocks before its first image (passed unjudged).
    """
    raw = tf.io.decode_raw(tf.strings.join([data, "\0"]), tf.uint8)
    walking, complete, cut, not_a_cut = (tf.constant(i, tf.int64) for i in range(4))

    def byte(pos):
        return tf.cast(tf.gather(raw, tf.clip_by_value(pos, 0, n)), tf.int64)

    def table(packed):  # bytes of the color table a packed field declares
        return tf.where(packed >= 128, 3 * 2 ** (packed % 8 + 1), tf.zeros_like(packed))

    def block(pos, result, blocks):
        """One block: its introducer, then its sub-blocks to the closing 0."""
        t = byte(pos)
        is_ext, is_img = tf.equal(t, 0x21), tf.equal(t, 0x2C)
        result = tf.where(
            pos >= n, cut, tf.where(tf.logical_or(is_ext, is_img), walking, not_a_cut)
        )
        pos = tf.where(is_img, pos + 11 + table(byte(pos + 9)), pos + 2)
        pos, ended = tf.while_loop(
            lambda pos, ended: tf.logical_and(tf.equal(result, walking), ended < 0),
            lambda pos, ended: _sub_block_window(raw, n, pos),
            (pos, tf.constant(-1, tf.int64)),
        )
        result = tf.where(
            tf.logical_and(tf.equal(result, walking), tf.equal(ended, 0)), cut, result
        )
        result = tf.where(tf.logical_and(tf.equal(result, walking), is_img), complete, result)
        return pos, result, blocks + 1

    def cond(pos, result, blocks):
        return tf.logical_and(tf.equal(result, walking), blocks < MAX_BLOCKS)

    start = 13 + table(byte(tf.constant(10, tf.int64)))
    result = tf.while_loop(cond, block, (start, walking, tf.constant(0, tf.int64)))[1]
    return tf.not_equal(result, cut)


def _sub_block_window(raw, n, pos):
    """Follows the data sub-blocks from pos, at least WINDOW bytes on.

    Encoders write full 255-byte sub-blocks, so one strided gather first
    skips the run of them (up to RUN_PROBE); the rest of the window is
    followed by pointer doubling (log2 WINDOW gathers) instead of one
    loop step per sub-block. The walk is thus linear in bytes whatever the
    sub-block lengths: millions of 1-byte sub-blocks cost what a few long
    ones do. Returns (pos, ended): ended 1 and pos after the closing 0-length
    sub-block; 0 when the sub-blocks run past the end of the data (cut); -1
    to go on from pos.
    """
    probe = pos + 256 * tf.range(RUN_PROBE, dtype=tf.int64)
    full = tf.equal(tf.gather(raw, tf.minimum(probe, n)), 255)  # raw[n] is 0
    pos = pos + 256 * tf.reduce_sum(tf.math.cumprod(tf.cast(full, tf.int64)))
    idx = tf.range(WINDOW, dtype=tf.int64)
    length = tf.cast(tf.gather(raw, tf.minimum(pos + idx, n)), tf.int64)
    jump = idx + 1 + length
    stays = tf.logical_or(
        tf.logical_or(tf.equal(length, 0), jump >= WINDOW), pos + idx >= n
    )
    nxt = tf.where(stays, idx, jump)  # -> the chain's last sub-block in the window
    for _ in range(WINDOW.bit_length() - 1):
        nxt = tf.gather(nxt, nxt)
    last = pos + nxt[0]
    last_length = length[nxt[0]]
    ended = tf.where(
        last >= n,
        tf.constant(0, tf.int64),
        tf.where(tf.equal(last_length, 0), tf.constant(1, tf.int64), tf.constant(-1, tf.int64)),
    )
    return last + 1 + last_length, ended
