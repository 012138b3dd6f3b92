"""EXIF orientation of JPEG files, applied to the decoded pixels.

A camera stores a portrait photo as landscape pixels plus an EXIF Orientation
tag (TIFF/EXIF 2.32, tag 0x0112, values 1-8); viewers rotate it, and so must
`wsol-predict`, or its boxes are drawn in a frame the user never sees.
``tf.io.decode_image`` ignores the tag, so it is read here from the APP1
segment (no pixel decoding) and applied with numpy, as PIL's
``ImageOps.exif_transpose`` does.
"""

import struct

import numpy as np

_TAG_ORIENTATION = 0x0112


def _tiff_orientation(tiff):
    if len(tiff) < 8 or tiff[:2] not in (b"II", b"MM"):
        return 1
    order = "<" if tiff[:2] == b"II" else ">"
    (ifd,) = struct.unpack(order + "I", tiff[4:8])
    if ifd + 2 > len(tiff):
        return 1
    (count,) = struct.unpack(order + "H", tiff[ifd:ifd + 2])
    for i in range(count):
        entry = tiff[ifd + 2 + 12 * i: ifd + 14 + 12 * i]
        if len(entry) < 12:
            break
        tag, kind = struct.unpack(order + "HH", entry[:4])
        if tag == _TAG_ORIENTATION and kind == 3:  # SHORT
            (value,) = struct.unpack(order + "H", entry[8:10])
            return value if 1 <= value <= 8 else 1
    return 1


def jpeg_orientation(data):
    """The EXIF Orientation (1-8) of JPEG bytes; 1 when absent or not a JPEG."""
    if data[:2] != b"\xff\xd8":
        return 1
    pos = 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker in (0xD9, 0xDA):  # end of image, start of scan: no more metadata
            break
        (length,) = struct.unpack(">H", data[pos + 2:pos + 4])
        segment = data[pos + 4:pos + 2 + length]
        if marker == 0xE1 and segment[:6] == b"Exif\x00\x00":
            return _tiff_orientation(segment[6:])
        pos += 2 + length
    return 1


def apply_orientation(image, orientation):
    """[H, W, C] pixels as stored -> as displayed for an EXIF Orientation value."""
    ops = {
        1: lambda a: a,
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.transpose(1, 0, 2),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
        8: lambda a: np.rot90(a, 1),
    }
    return np.ascontiguousarray(ops.get(int(orientation), ops[1])(image))
