"""The serving pixel cap holds for GIFs whose frames outgrow the logical screen.

TF decodes a GIF to the largest image block of any frame (see
``tests/gif_frames.py``); a check reading only the logical screen let a
few-kilobyte request decode to any size. ``decode_images`` is the serving
graph's decode step (the one the exported signatures call).
"""

import numpy as np
import pytest
import tensorflow as tf

from tests import gif_frames
from wsol_keras.export import gif_blocks
from wsol_keras.export import inference

LIMIT = 64 * 64


@tf.function
def _decode_graph(images, limit):
    return inference.decode_images(images, 16, limit)


def _decode(data, limit=LIMIT):
    """The decode step as the signatures run it: in a graph (eagerly, the
    block walk's while_loop steps one block at a time in Python)."""
    return _decode_graph(tf.constant([data]), limit)


def _decoded_hw(data):
    return tuple(tf.io.decode_image(data, channels=3, expand_animations=False).shape[:2])


@pytest.mark.parametrize(
    "screen, sizes",
    [
        ((8, 8), [(100, 90)]),  # one frame larger than the screen
        ((8, 8), [(8, 8), (100, 90)]),  # a small first frame, a large second
        ((8, 8), [(8, 8), (8, 600)]),  # canvas = max width x max height
    ],
)
def test_frame_larger_than_screen_is_refused(screen, sizes):
    data = gif_frames.frames(*screen, sizes)
    h, w = _decoded_hw(data)  # what the decoder allocates (measured)
    assert h * w > LIMIT and (h, w) == (
        max(s[0] for s in sizes), max(s[1] for s in sizes))
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        _decode(data)
    msg = info.value.message
    assert "images[0]" in msg and f"{h} x {w} (height x width)" in msg
    assert f"limit of {LIMIT} pixels" in msg


def test_screen_larger_than_frames_is_judged_by_its_frames():
    data = gif_frames.frames(500, 500, [(20, 30)])
    assert _decoded_hw(data) == (20, 30)
    _, hw = _decode(data)
    assert hw.numpy().tolist() == [[20, 30]]


def test_frame_within_limit_reports_decoded_size():
    data = gif_frames.frames(8, 8, [(8, 8), (40, 50)])
    _, hw = _decode(data)
    assert hw.numpy().tolist() == [list(_decoded_hw(data))] == [[40, 50]]


def test_gif_with_too_many_blocks_is_refused_not_passed():
    """Past the walk's block bound the frame sizes are unknown: refused, with
    a message, instead of passed unjudged."""
    data = gif_frames.pil_gif(8, 8)
    start = 13 + 3 * 2 ** ((data[10] & 7) + 1) * (data[10] >> 7)
    flood = data[:start] + b"\x21\xfe\x01x\x00" * (gif_blocks.MAX_BLOCKS + 5) + data[start:]
    assert _decoded_hw(flood) == (8, 8)
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        _decode(flood)
    assert "images[0]" in info.value.message
    assert f"more than {gif_blocks.MAX_BLOCKS} blocks" in info.value.message
