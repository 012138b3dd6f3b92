"""What TF's decoder makes of an encoded GIF, from its blocks (pure TF ops).

Serving checks each request image before decoding (`request_checks`); for a
GIF that means walking its blocks (GIF89a specification, sections 17-20):
whether the first image is complete (what TF's decoder needs) and the size
of the canvas it decodes to (the largest image block of any frame, not the
logical screen).
"""

import tensorflow as tf

# A real GIF has two blocks per frame (graphic control extension, image) and
# a few more; a block costs ~0.35 ms on a 2-core CPU, so a GIF of more than
# MAX_BLOCKS blocks (~500 frames) is refused, not walked. Per loop step, sub-blocks are followed through a run of up to
# RUN_PROBE full (255-byte) ones, then through WINDOW bytes (a power of 2).
MAX_BLOCKS = 1024
RUN_PROBE = 4096
WINDOW = 2048
SMALL_WINDOW = 32


def walk(data, n):
    """Walks every block of a GIF, as TF's decoder reads them.

    GIF89a sections 17-20: after the screen descriptor (and the global color
    table its packed byte declares) come blocks: 0x21 extension (label, then
    data sub-blocks [length][length bytes], closed by a 0-length one), 0x2C
    image (left, top, width, height (little-endian), packed byte, a local
    color table if flagged, the LZW code size byte, then sub-blocks closed
    by a 0 byte), 0x3B trailer.

    TF's decoder (giflib's DGifSlurp) decodes a GIF iff its first image block
    is complete, up to and including that closing 0 byte: it takes a missing
    trailer, a later frame cut short or junk after the first image. Its
    output is a canvas of the largest width x the largest height over every
    image descriptor it read, whatever the logical screen says, even with
    ``expand_animations=False`` (measured, TF 2.21). So the walk goes on to
    the end: a trailer, an unknown byte where a block should start (the
    decoder stops there too), or the end of the data; a read past the end
    before the first image is closed is a cut.

    Returns:
      (complete, height, width, bounded): complete is False only for a cut
      before the first image is closed (damage is left to the decoder);
      height x width the canvas (0 x 0 without any image descriptor);
      bounded False when the walk stopped after MAX_BLOCKS blocks (the
      canvas is then unknown).
    """
    raw = tf.io.decode_raw(tf.strings.join([data, "\0"]), tf.uint8)
    i64 = lambda v: tf.constant(v, tf.int64)  # noqa: E731

    def byte(pos):
        return tf.cast(tf.gather(raw, tf.clip_by_value(pos, 0, n)), tf.int64)

    def table(packed):  # bytes of the color table a packed field declares
        return tf.where(packed >= 128, 3 * 2 ** (packed % 8 + 1), tf.zeros_like(packed))

    def block(pos, going, first, cut, blocks, h, w):
        """One block: its introducer, then its sub-blocks to the closing 0."""
        t = byte(pos)
        is_ext, is_img = tf.equal(t, 0x21), tf.equal(t, 0x2C)
        going = tf.logical_and(pos < n, tf.logical_or(is_ext, is_img))
        # giflib counts an image once its 9 descriptor bytes are read.
        counted = tf.logical_and(tf.logical_and(going, is_img), pos + 10 <= n)
        h = tf.where(counted, tf.maximum(h, byte(pos + 7) + 256 * byte(pos + 8)), h)
        w = tf.where(counted, tf.maximum(w, byte(pos + 5) + 256 * byte(pos + 6)), w)
        cut = tf.logical_or(cut, tf.logical_and(pos >= n, tf.logical_not(first)))
        pos = tf.where(is_img, pos + 11 + table(byte(pos + 9)), pos + 2)
        # Most blocks close within a few bytes: a small window first.
        pos, ended = _sub_block_window(raw, n, pos, 0, SMALL_WINDOW)
        pos, ended = tf.while_loop(
            lambda pos, ended: tf.logical_and(going, ended < 0),
            lambda pos, ended: _sub_block_window(raw, n, pos),
            (pos, ended),
        )
        ran_out = tf.logical_and(going, tf.equal(ended, 0))
        cut = tf.logical_or(cut, tf.logical_and(ran_out, tf.logical_not(first)))
        first = tf.logical_or(first, tf.logical_and(is_img, tf.equal(ended, 1)))
        going = tf.logical_and(going, tf.logical_not(ran_out))
        return pos, going, first, cut, blocks + 1, h, w

    def cond(pos, going, first, cut, blocks, h, w):
        return tf.logical_and(going, blocks < MAX_BLOCKS)

    start = 13 + table(byte(i64(10)))
    f = tf.constant(False)
    _, going, _, cut, _, h, w = tf.while_loop(
        cond, block, (start, tf.constant(True), f, f, i64(0), i64(0), i64(0))
    )
    return tf.logical_not(cut), h, w, tf.logical_not(going)


def _sub_block_window(raw, n, pos, run_probe=RUN_PROBE, window=WINDOW):
    """Follows the data sub-blocks from pos, at least ``window`` bytes on.

    Encoders write full 255-byte sub-blocks, so one strided gather first
    skips the run of them (up to RUN_PROBE); the rest of the window is
    followed by pointer doubling (log2 WINDOW gathers) instead of one
    loop step per sub-block. The walk is thus linear in bytes whatever the
    sub-block lengths: millions of 1-byte sub-blocks cost what a few long
    ones do. Returns (pos, ended): ended 1 and pos after the closing 0-length
    sub-block; 0 when the sub-blocks run past the end of the data (cut); -1
    to go on from pos.
    """
    if run_probe:
        probe = pos + 256 * tf.range(run_probe, dtype=tf.int64)
        full = tf.equal(tf.gather(raw, tf.minimum(probe, n)), 255)  # raw[n] is 0
        pos = pos + 256 * tf.reduce_sum(tf.math.cumprod(tf.cast(full, tf.int64)))
    idx = tf.range(window, dtype=tf.int64)
    length = tf.cast(tf.gather(raw, tf.minimum(pos + idx, n)), tf.int64)
    jump = idx + 1 + length
    stays = tf.logical_or(
        tf.logical_or(tf.equal(length, 0), jump >= window), pos + idx >= n
    )
    nxt = tf.where(stays, idx, jump)  # -> the chain's last sub-block in the window
    for _ in range(window.bit_length() - 1):
        nxt = tf.gather(nxt, nxt)
    last = pos + nxt[0]
    last_length = length[nxt[0]]
    ended = tf.where(
        last >= n,
        tf.constant(0, tf.int64),
        tf.where(tf.equal(last_length, 0), tf.constant(1, tf.int64), tf.constant(-1, tf.int64)),
    )
    return last + 1 + last_length, ended
