"""Hostile input to the exported SavedModel signatures (issue 11).

One tiny CAM model (small CNN, 32 px, random weights) is exported once per
module with a low pixel limit (``MAX_PIXELS`` = 64 x 64) through the real
writer (`saved_model_lib.export_model`), reloaded with `tf.saved_model.load`
and its signatures are called from Python, as a TF Serving client's request
reaches the graph. Every bad request must end in ``InvalidArgumentError``
(TF Serving: INVALID_ARGUMENT, HTTP 400) whose message names the batch
position and what is wrong (size, shape, truncation) and holds only
printable ASCII (raw request bytes in a message made the Python caller get a
UnicodeDecodeError). Good requests that were fine stay fine.
"""

import io
import struct
import zlib

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from wsol_keras.training import trainer
from wsol_keras.configs import base as config_base
from wsol_keras.export import inference
from wsol_keras.export import saved_model_lib

S = 32
MAX_PIXELS = 64 * 64
DATA_INFO = {
    "num_classes": 3,
    "class_names": ["a", "b", "c"],
    "image_size": S,
}


def _image(h, w, seed=0):
    """A smooth RGB uint8 image (compresses well, decodes exactly as PNG)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = 60 + 100 * np.exp(-((yy - h / 2) ** 2 + (xx - w / 2) ** 2) / (0.1 * h * w))
    img = img[..., None] + rng.uniform(0, 40, size=3)
    return np.clip(img, 0, 255).astype(np.uint8)


def png(h, w):
    return tf.io.encode_png(_image(h, w)).numpy()


def jpeg(h, w, **kw):
    return tf.io.encode_jpeg(_image(h, w), quality=90, **kw).numpy()


def _pil(h, w, fmt, **kw):
    buf = io.BytesIO()
    Image.fromarray(_image(h, w)).save(buf, format=fmt, **kw)
    return buf.getvalue()


def gif(h, w):
    return _pil(h, w, "GIF")


def bmp(h, w):
    return _pil(h, w, "BMP")


def webp(h, w, lossless=True):
    return _pil(h, w, "WEBP", lossless=lossless)


def bmp_1bit(h, w):
    buf = io.BytesIO()
    Image.fromarray(_image(h, w)).convert("1").save(buf, format="BMP")
    return buf.getvalue()


def webp_animated(h, w):
    frames = [Image.fromarray(_image(h, w, seed)) for seed in range(2)]
    buf = io.BytesIO()
    frames[0].save(buf, format="WEBP", save_all=True, append_images=frames[1:], duration=50)
    return buf.getvalue()


def png_header_only(h, w):
    """A PNG whose IHDR claims h x w with one tiny IDAT: a decompression bomb
    in miniature (never decoded: the header check rejects it first)."""

    def chunk(kind, data):
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * (3 * 8 + 1))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", idat)
        + chunk(b"IEND", b"")
    )


# Bytes that are not an image and not valid UTF-8 (the old message echoed them).
RANDOM_BYTES = bytes(np.random.default_rng(3).integers(128, 256, 64, dtype=np.uint8))


@pytest.fixture(scope="module")
def signatures(tmp_path_factory):
    base = tmp_path_factory.mktemp("hostile_export")
    config = config_base.make_smoke(config_base.base_config())
    config.method.name = "cam"
    config.data.image_size = S
    keras.utils.set_random_seed(0)
    model = trainer.build_compiled_model(config, DATA_INFO)
    path = saved_model_lib.export_model(
        model,
        config,
        DATA_INFO,
        str(base),
        model_name="hostile",
        version=1,
        cam_threshold=0.5,
        max_image_pixels=MAX_PIXELS,
    )
    loaded = tf.saved_model.load(path)
    return {"loaded": loaded, "path": path}


def _call(signatures, name, images):
    sig = signatures["loaded"].signatures[name]
    return sig(images=images)


def _bytes_batch(items):
    return tf.constant(items, dtype=tf.string)


def c_escape(raw):
    """absl::CEscape, which TF Serving's REST handler applies to a status
    message to build its error body (http_rest_api_handler.cc,
    FillJsonErrorMsg): \\n \\r \\t \\" \\' \\\\ and octal \\ooo for other bytes
    outside printable ASCII."""
    named = {10: "\\n", 13: "\\r", 9: "\\t", 34: '\\"', 39: "\\'", 92: "\\\\"}
    return "".join(
        named.get(b, chr(b) if 32 <= b < 127 else f"\\{b:03o}") for b in raw
    )


def rest_error(message):
    """What a REST client parses from TF Serving's HTTP 400 body."""
    import json

    return json.loads('{ "error": "' + c_escape(message.encode()) + '" }')["error"]


def assert_clear(message, *needles):
    """The message names every needle, holds only printable ASCII and reaches
    a REST client intact (valid JSON after TF Serving's escaping)."""
    bad = [c for c in message if not (c.isascii() and (c.isprintable() or c in "\n\t"))]
    assert not bad, f"non-ASCII / unprintable characters {bad[:8]!r} in {message!r}"
    for needle in needles:
        assert needle in message, f"{needle!r} not in {message!r}"
    assert rest_error(message) == message


def test_rest_error_body_reference():
    """The reference escaping: raw bytes or a quote in a message make TF
    Serving's error body invalid JSON (octal / \\' escapes)."""
    import json

    assert rest_error('line\nend\t"x"') == 'line\nend\t"x"'
    for raw in (b"starting \xfc\xe1", b"images['a']"):
        with pytest.raises(json.JSONDecodeError):
            json.loads('{ "error": "' + c_escape(raw) + '" }')


# ------------------------------------------------------------------ image_bytes
def _truncate(data, keep):
    return data[:keep] if keep >= 0 else data[: len(data) + keep]


BAD_BYTES = {
    # case: (batch, substrings the message must name)
    "random_bytes": (
        lambda: [png(20, 30), RANDOM_BYTES],
        ["images[1]", "64 bytes", "not an encoded JPEG, PNG, GIF, BMP or WebP"],
    ),
    "empty_string_at_2": (
        lambda: [png(20, 30), png(20, 30), b""],
        ["images[2]", "empty"],
    ),
    "two_bytes_of_jpeg": (
        lambda: [b"\xff\xd8"],
        ["images[0]", "2 bytes"],
    ),
    "jpeg_cut_in_header": (
        lambda: [png(20, 30), _truncate(jpeg(24, 20), 60)],
        ["images[1]", "truncated JPEG", "60 bytes"],
    ),
    "jpeg_cut_in_scan": (
        lambda: [png(20, 30), png(20, 30), _truncate(jpeg(40, 40), -30)],
        ["images[2]", "truncated JPEG"],
    ),
    "progressive_jpeg_cut": (
        lambda: [_truncate(jpeg(40, 40, progressive=True), -30), png(8, 8)],
        ["images[0]", "truncated JPEG"],
    ),
    "png_cut_in_data": (
        lambda: [png(8, 8), _truncate(png(40, 40), -20)],
        ["images[1]", "truncated PNG"],
    ),
    "png_cut_in_header": (
        lambda: [png(8, 8), png(8, 8), png(8, 8), _truncate(png(40, 40), 20)],
        ["images[3]", "truncated PNG", "20 bytes"],
    ),
    "png_zero_width": (
        lambda: [png_header_only(10, 0)],
        ["images[0]", "10 x 0"],
    ),
    "gif_cut_in_header": (
        lambda: [gif(8, 8), _truncate(gif(30, 30), 11)],
        ["images[1]", "truncated GIF", "11 bytes"],
    ),
    "bmp_cut": (
        lambda: [_truncate(bmp(30, 30), -100)],
        ["images[0]", "truncated BMP"],
    ),
    "webp_cut": (
        lambda: [png(8, 8), _truncate(webp(30, 30), -10)],
        ["images[1]", "truncated WebP"],
    ),
    "png_bomb_20000_squared": (
        lambda: [png(8, 8), png_header_only(20000, 20000)],
        ["images[1]", "20000 x 20000", "400000000 pixels", f"{MAX_PIXELS}"],
    ),
    "jpeg_over_limit": (
        lambda: [jpeg(100, 50)],
        ["images[0]", "100 x 50", "5000 pixels", f"{MAX_PIXELS}"],
    ),
    "progressive_jpeg_over_limit": (
        lambda: [png(8, 8), jpeg(50, 100, progressive=True)],
        ["images[1]", "50 x 100", "5000 pixels"],
    ),
    "gif_over_limit": (
        lambda: [png(8, 8), gif(65, 64)],
        ["images[1]", "65 x 64", "4160 pixels"],
    ),
    "bmp_over_limit": (
        lambda: [bmp(70, 60)],
        ["images[0]", "70 x 60", "4200 pixels"],
    ),
    "webp_lossless_over_limit": (
        lambda: [webp(61, 70)],
        ["images[0]", "61 x 70", "4270 pixels"],
    ),
    # TF's decoders refuse these with messages that name no batch position.
    "bmp_1bit": (
        lambda: [png(8, 8), bmp_1bit(16, 16)],
        ["images[1]", "1-bit BMP", "8, 24 or 32 bits per pixel"],
    ),
    "webp_animated": (
        lambda: [png(8, 8), png(8, 8), webp_animated(16, 16)],
        ["images[2]", "animated WebP"],
    ),
    "webp_lossy_over_limit": (
        lambda: [png(8, 8), png(8, 8), webp(90, 48, lossless=False)],
        ["images[2]", "90 x 48", "4320 pixels"],
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_BYTES))
def test_image_bytes_bad_input_names_position(signatures, case):
    make, needles = BAD_BYTES[case]
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        _call(signatures, "image_bytes", _bytes_batch(make()))
    assert_clear(info.value.message, "image_bytes", *needles)


@pytest.mark.parametrize(
    "case, make, shape",
    [
        ("one_string_not_a_batch", lambda: tf.constant(png(8, 8)), "[]"),
        ("batch_of_batches", lambda: tf.constant([[png(8, 8)], [png(8, 8)]]), "[2,1]"),
    ],
)
def test_image_bytes_wrong_rank_gives_shape_message(signatures, case, make, shape):
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        _call(signatures, "image_bytes", make())
    assert_clear(info.value.message, "image_bytes", shape, "string [B]")


def test_image_bytes_empty_batch(signatures):
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        _call(signatures, "image_bytes", tf.constant([], dtype=tf.string))
    assert_clear(info.value.message, "image_bytes", "empty batch")


GOOD_BYTES = {
    "every_format_each_own_size": lambda: [
        png(20, 30),
        jpeg(33, 17),
        jpeg(40, 24, progressive=True),
        gif(12, 9),
        bmp(10, 14),
        webp(16, 11),
        webp(21, 19, lossless=False),
    ],
    "exactly_at_pixel_limit": lambda: [jpeg(64, 64), png(32, 128)],
    "jpeg_with_bytes_after_end_marker": lambda: [jpeg(20, 20) + b"appended" * 50],
    # The TF decoder reads these; the checks must not refuse them.
    "gif_without_trailer_byte": lambda: [gif(12, 10)[:-1]],
    "gif_png_webp_with_bytes_after_the_end": lambda: [
        gif(12, 10) + b"junk",
        png(9, 7) + b"junk",
        webp(8, 8) + b"junk",
    ],
    "one_by_one": lambda: [png(1, 1)],
}


@pytest.mark.parametrize("case", sorted(GOOD_BYTES))
def test_image_bytes_good_input_still_served(signatures, case):
    images = GOOD_BYTES[case]()
    out = _call(signatures, "image_bytes", _bytes_batch(images))
    decoded = [tf.io.decode_image(b, channels=3, expand_animations=False) for b in images]
    hw = np.array([im.shape[:2] for im in decoded], np.float32)
    boxes = out["boxes"].numpy()
    assert boxes.shape == (len(images), 4)
    # Boxes are in each original image's pixels: inside [0, W] x [0, H].
    assert (boxes >= 0).all()
    assert (boxes[:, [0, 2]] <= hw[:, 1:2]).all() and (boxes[:, [1, 3]] <= hw[:, 0:1]).all()


# ------------------------------------------------------------------ GIF data
# GIF89a (sections 17-20), read here independently of the code under test:
# header 6 + logical screen 7 bytes, a global color table of 3 * 2^(N+1)
# bytes if its packed byte's bit 7 is set, then blocks: 0x21 extension (label,
# sub-blocks [len][len bytes] closed by a 0 byte), 0x2C image (9 descriptor
# bytes, local color table if flagged, LZW code size byte, sub-blocks closed
# by 0), 0x3B trailer.
def _table(packed):
    return 3 * 2 ** ((packed & 7) + 1) if packed & 0x80 else 0


def _sub_blocks_end(data, pos):
    while data[pos]:
        pos += 1 + data[pos]
    return pos + 1


def gif_blocks(data):
    """[(kind, start, data_start, end)] of a complete GIF; data_start is where
    an image's sub-blocks begin."""
    pos, blocks = 13 + _table(data[10]), []
    while data[pos] != 0x3B:
        if data[pos] == 0x21:
            first = pos + 2
        else:
            assert data[pos] == 0x2C
            first = pos + 11 + _table(data[pos + 9])
        end = _sub_blocks_end(data, first)
        blocks.append(("image" if data[pos] == 0x2C else "extension", pos, first, end))
        pos = end
    return blocks


def animated_gif(h=20, w=24, frames=3):
    """PIL GIF: global color table, comment, loop and frame-delay extensions,
    later frames with a local color table."""
    rng = np.random.default_rng(5)
    images = [
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        for _ in range(frames)
    ]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:],
                   duration=80, loop=0, comment=b"wsol")
    return buf.getvalue()


def without_global_table(data):
    """The same GIF with its global color table moved into each image block
    that has no local one (a GIF with local color tables only)."""
    packed = data[10]
    table = data[13 : 13 + _table(packed)]
    out = bytearray(data[:10] + bytes([packed & 0x70]) + data[11:13])
    for kind, start, _, end in gif_blocks(data):
        block = data[start:end]
        if kind == "image" and not block[9] & 0x80:
            block = block[:9] + bytes([0x80 | block[9] & 0x40 | packed & 7]) + table + block[10:]
        out += block
    return bytes(out + b";")


def rechunked(data, size):
    """The same GIF with every image's LZW data in sub-blocks of `size` bytes
    (a hostile but valid layout: 1-byte sub-blocks double the data)."""
    out, pos = bytearray(data[:13 + _table(data[10])]), 13 + _table(data[10])
    for kind, start, first, end in gif_blocks(data):
        if kind == "image":
            lzw, p = b"", first
            while data[p]:
                lzw += data[p + 1 : p + 1 + data[p]]
                p += 1 + data[p]
            out += data[start:first] + b"".join(
                bytes([len(lzw[i : i + size])]) + lzw[i : i + size]
                for i in range(0, len(lzw), size)
            ) + b"\0"
        else:
            out += data[start:end]
        pos = end
    return bytes(out + data[pos:])


def _first_image(data):
    return next(b for b in gif_blocks(data) if b[0] == "image")


def _decodes(data):
    try:
        tf.io.decode_image(data, channels=3, expand_animations=False)
        return True
    except tf.errors.InvalidArgumentError:
        return False


GIF_VARIANTS = {
    "global_table": animated_gif,
    "local_tables_only": lambda: without_global_table(animated_gif()),
    "one_byte_sub_blocks": lambda: rechunked(animated_gif(60, 60, 2), 1),
}
# Where to cut, from the first image block (kind, start, data_start, end).
GIF_CUTS = {
    "in_extension_before_image": lambda img: img[1] - 3,
    "in_image_descriptor": lambda img: img[1] + 5,
    "in_local_color_table_if_any": lambda img: (img[1] + 10 + img[2] - 1) // 2,
    "before_lzw_code_size": lambda img: img[2] - 1,
    "first_data_byte": lambda img: img[2] + 1,
    "middle_of_data": lambda img: (img[2] + img[3]) // 2,
    "before_closing_zero": lambda img: img[3] - 1,
}


@pytest.mark.parametrize("variant", sorted(GIF_VARIANTS))
@pytest.mark.parametrize("where", sorted(GIF_CUTS))
def test_gif_cut_inside_first_image_names_position(signatures, variant, where):
    """A GIF cut before its first image block is closed: the decoder refuses
    it without a batch position; the check names images[1]."""
    data = GIF_VARIANTS[variant]()
    cut = data[: GIF_CUTS[where](_first_image(data))]
    assert not _decodes(cut)  # what the decoder does (measured, TF 2.21)
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        _call(signatures, "image_bytes", _bytes_batch([gif(8, 8), cut, png(8, 8)]))
    assert_clear(info.value.message, "image_bytes", "images[1]", "truncated GIF",
                 f"({len(cut)} bytes)", "first image block")


@pytest.mark.parametrize("variant", sorted(GIF_VARIANTS))
def test_gif_served_as_the_decoder_decodes_it(signatures, variant):
    """Complete GIFs, one without its trailer, and ones whose first image is
    complete but a later frame is cut: the decoder decodes all of them (its
    first frame), so the check lets them through."""
    data = GIF_VARIANTS[variant]()
    first_end = _first_image(data)[3]
    second = [b for b in gif_blocks(data) if b[0] == "image"][1]
    images = [
        data,
        data[:-1],  # no trailer
        data[:first_end],  # first image only, nothing after it
        data[: (second[2] + second[3]) // 2],  # second frame cut
    ]
    assert data[-1:] == b";" and all(_decodes(d) for d in images)
    out = _call(signatures, "image_bytes", _bytes_batch(images))
    assert out["boxes"].shape == (len(images), 4)


def test_gif_with_many_blocks_before_its_image_still_served(signatures):
    """The walk stops after 256 blocks before the first image (a bound on a
    hostile flood of tiny extensions) and leaves such a GIF to the decoder,
    which decodes it: served, not refused."""
    data = gif(8, 8)
    start = _first_image(data)[1]
    flood = data[:start] + b"\x21\xfe\x01x\x00" * 300 + data[start:]
    assert _decodes(flood)
    out = _call(signatures, "image_bytes", _bytes_batch([png(8, 8), flood]))
    assert out["boxes"].shape == (2, 4)


# ------------------------------------------------------------------ image_tensor
BAD_TENSORS = {
    "four_channels": (
        lambda: np.zeros([2, 8, 8, 4], np.uint8),
        ["[2,8,8,4]", "3 channels"],
    ),
    "one_channel": (
        lambda: np.zeros([1, 8, 8, 1], np.uint8),
        ["[1,8,8,1]", "3 channels"],
    ),
    "three_d_single_image": (
        lambda: np.zeros([8, 8, 3], np.uint8),
        ["[8,8,3]", "rank 3", "[B, H, W, 3]"],
    ),
    "zero_by_zero": (
        lambda: np.zeros([2, 0, 0, 3], np.uint8),
        ["[2,0,0,3]", "0 x 0"],
    ),
    "empty_batch": (
        lambda: np.zeros([0, 8, 8, 3], np.uint8),
        ["[0,8,8,3]", "empty batch"],
    ),
    "over_pixel_limit": (
        lambda: np.zeros([1, 100, 50, 3], np.uint8),
        ["100 x 50", "5000 pixels", f"{MAX_PIXELS}"],
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_TENSORS))
def test_image_tensor_bad_shape_gives_shape_message(signatures, case):
    make, needles = BAD_TENSORS[case]
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        _call(signatures, "image_tensor", tf.constant(make()))
    assert_clear(info.value.message, "image_tensor", *needles)


def test_image_tensor_good_input_still_served(signatures):
    out = _call(signatures, "image_tensor", tf.constant(_image(64, 64)[None]))
    assert out["classes"].shape[0] == 1 and out["heatmaps"].shape == (1, S, S)


# ------------------------------------------------------------------ the limit
def test_pixel_limit_in_model_card_and_default(signatures):
    card = saved_model_lib.read_model_card(signatures["path"])
    assert card["max_image_pixels"] == MAX_PIXELS
    assert inference.DEFAULT_MAX_IMAGE_PIXELS == 50_000_000


def test_pixel_limit_must_be_positive():
    config = config_base.make_smoke(config_base.base_config())
    config.data.image_size = S
    model = trainer.build_compiled_model(config, DATA_INFO)
    with pytest.raises(ValueError, match="max_image_pixels=0"):
        inference.InferenceModule(model, config, 0.5, max_image_pixels=0)
