"""User image files for `wsol-predict`: listing, header sizes, safe decoding.

* `list_images`: a folder (recursive), a glob pattern or a list file -> sorted
  paths and the root their ids are relative to (wsolevaluation names a score map
  ``<image_id>.npy`` with ``image_id`` the image path relative to the image root).
* `header_size`: (width, height) from the file header (JPEG, PNG, GIF, BMP,
  WebP) without decoding, so a decompression bomb is refused before any pixel
  is allocated (for a GIF: the largest frame, the size TF decodes to).
* `load_image`: header check, then the data pipeline's own decode
  (``tf.io.decode_image``, RGB) and resize (`wsol_keras.data.pipeline.resize_image`),
  so a predicted map sees the pixels the evaluator would have seen.
"""

import glob
import os
import stat
import struct

from absl import logging

import tensorflow as tf

from wsol_keras.data.loaders import decode_error_text
from wsol_keras.data.pipeline import resize_image
from wsol_keras.predict import exif

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
DEFAULT_MAX_PIXELS = 50_000_000


class ImageError(ValueError):
    """An image that cannot be used; the message names the path and why."""


def _is_glob(pattern):
    return any(c in pattern for c in "*?[")


def _read_list_file(path):
    base = os.path.dirname(os.path.abspath(path))
    paths = []
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            entry = line.strip()
            if not entry or entry.startswith("#"):
                continue
            full = entry if os.path.isabs(entry) else os.path.join(base, entry)
            if not os.path.isfile(full):
                raise FileNotFoundError(
                    f"{path}:{lineno}: image {entry!r} does not exist ({full})"
                )
            paths.append(os.path.normpath(full))
    return paths, base


def _is_regular(path):
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def _inside(path, folders):
    real = os.path.realpath(path)
    return any(real == f or real.startswith(f + os.sep) for f in folders)


def list_images(spec, image_root=None, exclude=()):
    """Resolves an image spec to (sorted absolute paths, root).

    Args:
        spec: a folder (searched recursively for `IMAGE_EXTENSIONS`, any case),
            a glob pattern (``**`` allowed; every match is taken), or a text
            file listing one image per line (relative to the list file's
            folder; ``#`` comments and blank lines ignored).
        image_root: the folder image ids are relative to (default: the folder,
            the glob's leading non-pattern folder, or the list file's folder).
        exclude: folders whose files are never taken (the tool's own output
            inside the input folder: a rerun must not predict its overlays).
            Named pipes, sockets and devices are skipped too (reading one
            would block), with a warning that counts them.

    Returns:
        (paths, root).

    Raises:
        FileNotFoundError: nothing matches, or a listed file is missing.
        ValueError: an image outside `image_root`.
    """
    excluded = [os.path.realpath(f) for f in exclude if f]
    if os.path.isdir(spec):
        root = os.path.abspath(spec)
        paths, other = [], []
        for folder, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if not _inside(os.path.join(folder, d), excluded))
            for name in files:
                if name.lower().endswith(IMAGE_EXTENSIONS):
                    p = os.path.join(folder, name)
                    # A FIFO or device would block or fail the decoder.
                    (paths if os.path.isfile(p) else other).append(p)
        if other:
            logging.warning(
                "--images=%s: skipped %d non-regular file(s) (FIFO, socket, "
                "device), e.g. %s", spec, len(other), sorted(other)[0])
    elif _is_glob(spec):
        parts = []
        for part in os.path.abspath(spec).split(os.sep):
            if _is_glob(part):
                break
            parts.append(part)
        root = os.sep.join(parts) or os.sep
        paths = [os.path.abspath(p) for p in glob.glob(spec, recursive=True)
                 if not os.path.isdir(p)]
        paths = [p for p in paths if not _inside(p, excluded)]
    elif os.path.isfile(spec):
        paths, root = _read_list_file(spec)
    else:
        raise FileNotFoundError(
            f"--images={spec!r}: not a folder, a glob pattern or a list file"
        )
    special = [p for p in paths if not _is_regular(p)]
    if special:
        logging.warning(
            "skipped %d file(s) that are not regular files (named pipe, socket, "
            "device or broken link), e.g. %s", len(special), special[0])
        paths = [p for p in paths if p not in set(special)]
    if image_root:
        root = os.path.abspath(image_root)
    if not paths:
        raise FileNotFoundError(
            f"--images={spec!r}: no images found (extensions: "
            f"{', '.join(IMAGE_EXTENSIONS)})"
        )
    for p in paths:
        if os.path.relpath(p, root).startswith(os.pardir):
            raise ValueError(f"image {p} is outside the image root {root}")
    return sorted(set(paths)), root


def image_id(path, root):
    """wsolevaluation's image id: the path relative to the root, '/'-separated."""
    return os.path.relpath(path, root).replace(os.sep, "/")


# -- headers ------------------------------------------------------------------


def _jpeg_size(f):
    f.seek(2)
    while True:
        byte = f.read(1)
        while byte and byte != b"\xff":
            byte = f.read(1)
        while byte == b"\xff":
            byte = f.read(1)
        if not byte:
            return None
        marker = byte[0]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            continue  # markers without a length
        raw = f.read(2)
        if len(raw) < 2:
            return None
        length = struct.unpack(">H", raw)[0]
        # SOF0..SOF15 carry the frame size; C4 (DHT), C8 (JPG), CC (DAC) do not.
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            data = f.read(5)
            if len(data) < 5:
                return None
            height, width = struct.unpack(">HH", data[1:5])
            return width, height
        f.seek(length - 2, os.SEEK_CUR)


def _webp_size(head):
    chunk = head[12:16]
    if chunk == b"VP8 " and len(head) >= 30:
        w, h = struct.unpack("<HH", head[26:30])
        return w & 0x3FFF, h & 0x3FFF
    if chunk == b"VP8L" and len(head) >= 25:
        bits = struct.unpack("<I", head[21:25])[0]
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(head) >= 30:
        w = int.from_bytes(head[24:27], "little") + 1
        h = int.from_bytes(head[27:30], "little") + 1
        return w, h
    return None


def _gif_canvas(data):
    """(width, height) TF decodes a GIF to: the largest image descriptor over
    every frame (GIF89a sections 17-20; TF's decoder ignores the logical
    screen, even with ``expand_animations=False``), None without one.

    Blocks are walked as the decoder reads them: 0x21 extension (label, then
    sub-blocks closed by a 0-length one), 0x2C image (9 descriptor bytes, a
    local color table if flagged, LZW code size, sub-blocks), up to the
    trailer, an unknown byte or the end of the data.
    """

    def table(packed):
        return 3 * 2 ** ((packed & 7) + 1) if packed & 0x80 else 0

    n, width, height = len(data), 0, 0
    pos = 13 + table(data[10]) if n > 10 else n
    while pos < n and data[pos] in (0x21, 0x2C):
        if data[pos] == 0x2C:
            if pos + 10 > n:
                break
            w, h = struct.unpack("<HH", data[pos + 5 : pos + 9])
            width, height = max(width, w), max(height, h)
            pos += 11 + table(data[pos + 9])
        else:
            pos += 2
        while pos < n and data[pos]:
            pos += 1 + data[pos]
        pos += 1
    return (width, height) if width or height else None


def header_size(path):
    """(width, height) read from the header of a JPEG/PNG/GIF/BMP/WebP file.

    Raises:
        ImageError: not one of these formats, or a truncated header.
    """
    if not _is_regular(path):  # a named pipe would block the read forever
        raise ImageError(f"{path}: not a regular file")
    with open(path, "rb") as f:
        head = f.read(32)
        size = None
        if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
            size = struct.unpack(">II", head[16:24])
        elif head[:6] in (b"GIF87a", b"GIF89a"):
            f.seek(0)
            size = _gif_canvas(f.read())
        elif head[:2] == b"BM" and len(head) >= 26:
            if struct.unpack("<I", head[14:18])[0] == 12:  # OS/2 BITMAPCOREHEADER
                size = struct.unpack("<HH", head[18:22])
            else:
                w, h = struct.unpack("<ii", head[18:26])
                size = (abs(w), abs(h))  # negative height: top-down rows
        elif head[:4] == b"RIFF" and head[8:12] == b"WEBP":
            size = _webp_size(head)
        elif head[:3] == b"\xff\xd8\xff":
            size = _jpeg_size(f)
        else:
            raise ImageError(f"{path}: not a JPEG, PNG, GIF, BMP or WebP file")
    if size is None or min(size) <= 0:
        raise ImageError(f"{path}: truncated or invalid image header")
    return int(size[0]), int(size[1])


# -- decoding -----------------------------------------------------------------


def load_image(path, size, max_pixels=DEFAULT_MAX_PIXELS):
    """Decodes one image for the model.

    Args:
        path: image file.
        size: S, the side of the direct resize (the data pipeline's).
        max_pixels: refuse images with more pixels than this (from the header).

    Returns:
        (original uint8 [H, W, 3] RGB, resized uint8 [S, S, 3]).

    Raises:
        ImageError: unreadable, unsupported, corrupt, or over `max_pixels`.
    """
    width, height = header_size(path)
    if max_pixels and width * height > max_pixels:
        raise ImageError(
            f"{path}: {width}x{height} = {width * height / 1e6:.1f} Mpixel exceeds "
            f"--max_pixels={int(max_pixels)} (raise it to process this image)"
        )
    try:
        data = tf.io.read_file(path)
        image = tf.io.decode_image(
            data, channels=3, expand_animations=False, dtype=tf.uint8
        )
    except (tf.errors.OpError, ValueError) as e:
        raise ImageError(f"{path}: cannot decode ({decode_error_text(e)})") from None
    original = image.numpy()
    if original.shape[0] == 0 or original.shape[1] == 0:
        raise ImageError(f"{path}: empty image")
    # As displayed: a portrait photo stored as landscape + EXIF Orientation.
    orientation = exif.jpeg_orientation(data.numpy()[:1 << 20])
    if orientation != 1:
        original = exif.apply_orientation(original, orientation)
        image = tf.convert_to_tensor(original)
    resized = resize_image(image, int(size)).numpy()
    return original, resized
