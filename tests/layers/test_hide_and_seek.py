"""`HideAndSeek` (HaS; Singh & Lee, ICCV 2017, Sec. 3.1-3.2) against numpy.

Expected values follow the released loop (clovaai/wsolevaluation
wsol/method/has.py): patch (i, j) covers rows [i S, min((i+1) S, H)) and
columns [j S, min((j+1) S, W)); a hidden patch takes the fill value."""

import keras
import numpy as np
import pytest

from layer_test_util import run_layer_test
from wsol_keras.layers import HideAndSeek
from wsol_keras.layers.hide_and_seek import IMAGENET_MEAN_RGB


def _images(seed=0, shape=(2, 7, 5, 3)):
    return np.random.default_rng(seed).uniform(0, 255, size=shape).astype("float32")


def _numpy_has(images, hidden_cells, s, fill):
    out = images.copy()
    b_, h, w, _ = images.shape
    for b in range(b_):
        for i in range(hidden_cells.shape[1]):
            for j in range(hidden_cells.shape[2]):
                if hidden_cells[b, i, j]:
                    out[b, i * s:min((i + 1) * s, h), j * s:min((j + 1) * s, w)] = fill
    return out


def test_given_patches_are_filled_as_the_released_loop():
    images = _images()
    cells = np.random.default_rng(1).uniform(size=(2, 3, 2)) < 0.5  # ceil(7/3), ceil(5/3)
    layer = HideAndSeek(patch_sizes=(3,), fill_value=(1.0, 2.0, 3.0))
    from wsol_keras.layers.hide_and_seek import cells_to_pixels

    hidden = cells_to_pixels(cells.astype("float32"), 3, 7, 5)
    out = keras.ops.convert_to_numpy(layer.apply_mask(images, hidden))
    np.testing.assert_array_equal(out, _numpy_has(images, cells, 3, (1.0, 2.0, 3.0)))


def test_random_hiding_is_whole_patches_of_the_fill_with_rate_p():
    images = _images(2, (4, 16, 16, 3)) + 1000.0  # never equal to the fill
    layer = HideAndSeek(patch_sizes=(4,), hide_prob=0.5, seed=5)
    out = keras.ops.convert_to_numpy(layer(images, training=True))
    fill = np.asarray(IMAGENET_MEAN_RGB, "float32")
    hidden = np.all(out == fill, axis=-1)
    kept = np.all(out == images, axis=-1)
    assert np.all(hidden | kept)  # every pixel is either original or the mean
    cells = hidden.reshape(4, 4, 4, 4, 4).transpose(0, 1, 3, 2, 4).reshape(4, 4, 4, 16)
    assert np.all(cells.all(-1) | (~cells).all(-1))  # whole 4x4 patches
    # 64 patches, p = 0.5: the hidden fraction is 0.5 +- 0.19 (3 sd).
    assert 0.3 < hidden.mean() < 0.7
    np.testing.assert_array_equal(
        out, _numpy_has(images, cells.all(-1), 4, fill)
    )


def test_probability_one_hides_everything_and_zero_nothing():
    images = _images()
    out = keras.ops.convert_to_numpy(
        HideAndSeek(patch_sizes=(2,), hide_prob=1.0, fill_value=7.0)(images, training=True)
    )
    assert np.all(out == 7.0)
    out = keras.ops.convert_to_numpy(
        HideAndSeek(patch_sizes=(2,), hide_prob=0.0)(images, training=True)
    )
    np.testing.assert_array_equal(out, images)


def test_mixed_sizes_patch_size_zero_hides_nothing():
    images = _images(3, (32, 8, 8, 3))
    out = keras.ops.convert_to_numpy(
        HideAndSeek(patch_sizes=(0, 8), hide_prob=1.0, fill_value=-1.0, seed=2)(
            images, training=True
        )
    )
    whole = np.all(out == -1.0, axis=(1, 2, 3))
    untouched = np.all(out == images, axis=(1, 2, 3))
    assert np.all(whole | untouched) and whole.any() and untouched.any()


@pytest.mark.parametrize("training", [False, None])
def test_identity_at_inference(training):
    images = _images()
    out = HideAndSeek(hide_prob=1.0)(images, training=training)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(out), images)


def test_keras_contract(tmp_path):
    run_layer_test(
        HideAndSeek,
        {"patch_sizes": (2, 4), "hide_prob": 0.3, "fill_value": (1.0, 2.0, 3.0), "seed": 1},
        (2, 8, 8, 3),
        tmp_path=tmp_path,
    )
    clone = HideAndSeek.from_config(HideAndSeek(patch_sizes=(0, 16), seed=4).get_config())
    assert clone.patch_sizes == (0, 16) and clone.seed == 4


@pytest.mark.parametrize(
    "kwargs,field",
    [({"patch_sizes": ()}, "patch_sizes"), ({"patch_sizes": (-1,)}, "patch_sizes"),
     ({"hide_prob": 2.0}, "hide_prob"), ({"fill_value": (1.0, 2.0)}, "fill_value")],
)
def test_bad_arguments_raise_naming_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        HideAndSeek(**kwargs)
