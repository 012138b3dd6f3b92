"""PaddedMaxPooling2D against a numpy copy of torch.nn.MaxPool2d (ceil_mode=False)."""

import keras
import numpy as np
import pytest

from layer_test_util import run_layer_test
from wsol_keras.layers.padded_max_pool import PaddedMaxPooling2D


def torch_max_pool(x, k, s, p):
    """nn.MaxPool2d(k, stride=s, padding=p) on NHWC: -inf on every side, valid
    windows, floor((n + 2p - k) / s) + 1 outputs per axis."""
    xp = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), constant_values=-np.inf)
    oh = (x.shape[1] + 2 * p - k) // s + 1
    ow = (x.shape[2] + 2 * p - k) // s + 1
    out = np.empty((x.shape[0], oh, ow, x.shape[3]), x.dtype)
    for i in range(oh):
        for j in range(ow):
            out[:, i, j] = xp[:, i * s : i * s + k, j * s : j * s + k].max(axis=(1, 2))
    return out


@pytest.mark.parametrize("h, w", [(8, 8), (7, 7), (8, 7), (6, 9), (56, 56)])
def test_matches_torch_maxpool_3_2_1_on_even_and_odd_sizes(h, w):
    # Negative inputs: zero padding would win where -inf padding does not.
    x = np.random.default_rng(h * 100 + w).normal(size=(2, h, w, 3)).astype(np.float32)
    got = np.asarray(PaddedMaxPooling2D(3, 2, 1)(x))
    expected = torch_max_pool(x, 3, 2, 1)
    assert got.shape == expected.shape == (2, (h + 1) // 2, (w + 1) // 2, 3)
    np.testing.assert_array_equal(got, expected)


def test_keras_same_padding_is_not_torchs_on_even_sizes():
    # Why the explicit layer: TF's "same" pads 0 before / 1 after for an even
    # axis, torch 1 / 1, so the windows are shifted by one cell.
    x = np.random.default_rng(0).normal(size=(1, 8, 7, 2)).astype(np.float32)
    same = np.asarray(keras.layers.MaxPooling2D(3, 2, padding="same")(x))
    expected = torch_max_pool(x, 3, 2, 1)
    assert same.shape == expected.shape
    assert not np.array_equal(same, expected)
    # With both axes odd TF pads 1 / 1 as torch does, and the values agree.
    y = x[:, :7]
    np.testing.assert_array_equal(
        np.asarray(keras.layers.MaxPooling2D(3, 2, padding="same")(y)),
        torch_max_pool(y, 3, 2, 1),
    )


def test_stride_one_keeps_the_size():
    x = np.random.default_rng(1).normal(size=(1, 5, 6, 2)).astype(np.float32)
    got = np.asarray(PaddedMaxPooling2D(3, 1, 1)(x))
    np.testing.assert_array_equal(got, torch_max_pool(x, 3, 1, 1))


def test_bad_padding_names_the_values():
    with pytest.raises(ValueError, match="padding=2 for pool_size=3"):
        PaddedMaxPooling2D(3, 2, 2)


def test_keras_layer_contract(tmp_path):
    run_layer_test(
        PaddedMaxPooling2D,
        {"pool_size": 3, "strides": 2, "padding": 1},
        (2, 6, 5, 3),
        tmp_path=tmp_path,
    )
