"""Hand-built GIFs whose image blocks differ from their logical screen.

GIF89a (sections 18-20), read here independently of the code under test:
header 6 bytes, logical screen width, height (little-endian) then packed
byte, background, aspect; a global color table of 3 * 2^(N+1) bytes if bit
7 of the packed byte is set; then blocks: 0x21 extension (label, sub-blocks
closed by 0), 0x2C image (left, top, width, height, packed; a local color
table if flagged; LZW code size; sub-blocks closed by 0), 0x3B trailer.
TF's decoder (giflib) returns a canvas of the largest image block's width x
height over every frame, whatever the logical screen says (measured, TF 2.21).
"""

import io
import struct

import numpy as np
from PIL import Image


def _table(packed):
    return 3 * 2 ** ((packed & 7) + 1) if packed & 0x80 else 0


def pil_gif(h, w, value=0):
    buf = io.BytesIO()
    Image.fromarray(np.full((h, w, 3), value, np.uint8)).save(buf, format="GIF")
    return buf.getvalue()


def _image_block(data):
    """(start, end) of the first image block of a PIL GIF."""
    pos = 13 + _table(data[10])
    while data[pos] != 0x2C:
        pos += 2
        while data[pos]:
            pos += 1 + data[pos]
        pos += 1
    end = pos + 11 + _table(data[pos + 9])
    while data[end]:
        end += 1 + data[end]
    return pos, end + 1


def with_screen(data, width, height):
    """The same GIF with its logical screen set to width x height."""
    return data[:6] + struct.pack("<HH", width, height) + data[10:]


def _local(data):
    """The first image block of data with the global color table made local."""
    start, end = _image_block(data)
    packed = data[10]
    block = data[start:end]
    if block[9] & 0x80:
        return block
    gct = data[13 : 13 + _table(packed)]
    return block[:9] + bytes([0x80 | (packed & 7)]) + gct + block[10:]


def frames(screen_w, screen_h, sizes):
    """A GIF with logical screen screen_w x screen_h and one frame per (h, w)."""
    first = pil_gif(*sizes[0])
    start, _ = _image_block(first)
    out = with_screen(first[:start], screen_w, screen_h)
    for h, w in sizes:
        out += _local(pil_gif(h, w))
    return out + b";"
