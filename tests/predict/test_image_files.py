"""wsol-predict's image listing and header reading (no model)."""

import struct
import zlib

import cv2
import numpy as np
from PIL import Image
import pytest

from wsol_keras.predict import image_files
def _png_header_only(path, width, height):
    """A PNG whose IHDR claims width x height, with no pixel data at all."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(struct.pack(">I", len(ihdr)) + chunk)
        f.write(struct.pack(">I", zlib.crc32(chunk) & 0xFFFFFFFF))


def _rgb(h, w):
    return np.random.RandomState(0).randint(0, 255, (h, w, 3)).astype(np.uint8)


@pytest.mark.parametrize("ext", ["png", "jpg", "bmp", "webp", "gif"])
def test_header_size_matches_the_written_size(tmp_path, ext):
    path = str(tmp_path / f"x.{ext}")
    if ext == "gif":
        Image.fromarray(_rgb(23, 37)).save(path)
    else:
        assert cv2.imwrite(path, _rgb(23, 37))
    assert image_files.header_size(path) == (37, 23)


def test_oversized_header_is_refused_before_decoding(tmp_path):
    path = str(tmp_path / "huge.png")
    _png_header_only(path, 100_000, 80_000)
    assert image_files.header_size(path) == (100_000, 80_000)
    with pytest.raises(image_files.ImageError, match=r"huge\.png: 100000x80000 = 8000\.0 Mpixel"):
        image_files.load_image(path, 32, max_pixels=50_000_000)


def test_not_an_image_and_corrupt_files_name_the_path(tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("hello")
    with pytest.raises(image_files.ImageError, match="notes.png: not a JPEG"):
        image_files.load_image(str(text), 32)
    bad = tmp_path / "bad.png"
    good = cv2.imencode(".png", _rgb(8, 8))[1].tobytes()
    bad.write_bytes(good[:40])  # valid header, truncated data
    with pytest.raises(image_files.ImageError, match="bad.png: cannot decode"):
        image_files.load_image(str(bad), 32)


def test_list_images_folder_glob_and_list_file(tmp_path):
    root = tmp_path / "imgs"
    (root / "a" / "b").mkdir(parents=True)
    for rel in ("top.JPG", "a/one.png", "a/b/two.webp", "a/readme.txt"):
        (root / rel).write_bytes(b"x")
    paths, got_root = image_files.list_images(str(root))
    ids = [image_files.image_id(p, got_root) for p in paths]
    assert ids == ["a/b/two.webp", "a/one.png", "top.JPG"]
    paths, got_root = image_files.list_images(str(root / "a" / "**" / "*.png"))
    assert got_root == str(root / "a")
    assert [image_files.image_id(p, got_root) for p in paths] == ["one.png"]
    listing = tmp_path / "list.txt"
    listing.write_text("# mine\nimgs/a/one.png\n\nimgs/top.JPG\n")
    paths, got_root = image_files.list_images(str(listing))
    assert [image_files.image_id(p, got_root) for p in paths] == [
        "imgs/a/one.png",
        "imgs/top.JPG",
    ]
    listing.write_text("imgs/a/one.png\nimgs/missing.png\n")
    with pytest.raises(FileNotFoundError, match=r"list.txt:2: image 'imgs/missing.png'"):
        image_files.list_images(str(listing))
    with pytest.raises(ValueError, match="outside the image root"):
        image_files.list_images(str(root), image_root=str(root / "a"))


@pytest.mark.parametrize(
    "sizes", [[(300, 200)], [(10, 10), (300, 200)], [(10, 10), (10, 1200)]]
)
def test_gif_pixel_cap_uses_the_decoded_canvas(tmp_path, sizes):
    """TF decodes a GIF to its largest frame, not its logical screen: a 10 x 10
    screen must not let a 300 x 200 frame past --max_pixels."""
    import tensorflow as tf

    from tests import gif_frames

    path = tmp_path / "frames.gif"
    path.write_bytes(gif_frames.frames(10, 10, sizes))
    h, w = tf.io.decode_image(path.read_bytes(), channels=3, expand_animations=False).shape[:2]
    assert (h, w) == (max(s[0] for s in sizes), max(s[1] for s in sizes))
    assert image_files.header_size(str(path)) == (w, h)
    with pytest.raises(image_files.ImageError, match=rf"frames\.gif: {w}x{h} .* --max_pixels=10000"):
        image_files.load_image(str(path), 8, max_pixels=10000)
