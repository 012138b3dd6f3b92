"""`AttentionDropout` (ADL; Choe & Shim, CVPR 2019, Sec. 3.1) against numpy.

Expected values are the released formula (clovaai/wsolevaluation
wsol/method/adl.py) written out in numpy: attention = channel mean; drop mask
= attention < gamma * per-image max; importance = sigmoid(attention); the drop
mask with probability drop_rate (floor(u + drop_rate) == 1)."""

import keras
import numpy as np
import pytest

from layer_test_util import run_layer_test
from wsol_keras.layers import AttentionDropout


def _features(seed=0, shape=(2, 3, 4, 5)):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def _numpy_adl(f, gamma, use_drop):
    att = f.mean(axis=-1, keepdims=True)
    peak = att.reshape(len(f), -1).max(axis=1).reshape(-1, 1, 1, 1)
    drop = (att < gamma * peak).astype("float32")
    imp = 1.0 / (1.0 + np.exp(-att))
    return f * (drop if use_drop else imp)


@pytest.mark.parametrize("rate,use_drop", [(1.0, True), (0.0, False)])
def test_each_branch_matches_numpy(rate, use_drop):
    f = _features()
    layer = AttentionDropout(drop_rate=rate, drop_threshold=0.8, seed=3)
    out = keras.ops.convert_to_numpy(layer(f, training=True))
    np.testing.assert_allclose(out, _numpy_adl(f, 0.8, use_drop), rtol=1e-6, atol=1e-6)
    # The branches differ on these features (the test can tell them apart).
    assert not np.allclose(_numpy_adl(f, 0.8, True), _numpy_adl(f, 0.8, False))


@pytest.mark.parametrize("u,use_drop", [(0.24, False), (0.26, True), (0.99, True), (0.0, False)])
def test_injected_draw_picks_the_released_branch(u, use_drop):
    # floor(u + 0.75) == 1 exactly when u >= 0.25.
    f = _features(1)
    layer = AttentionDropout(drop_rate=0.75, drop_threshold=0.9)
    out = keras.ops.convert_to_numpy(layer.select(f, u))
    np.testing.assert_allclose(out, _numpy_adl(f, 0.9, use_drop), rtol=1e-6, atol=1e-6)


def test_one_choice_per_batch_with_the_drop_rate_frequency():
    f = _features(2, (4, 3, 3, 2))
    layer = AttentionDropout(drop_rate=0.75, drop_threshold=0.9, seed=7)
    drop, imp = _numpy_adl(f, 0.9, True), _numpy_adl(f, 0.9, False)
    picks = []
    for _ in range(200):
        out = keras.ops.convert_to_numpy(layer(f, training=True))
        is_drop = np.allclose(out, drop, atol=1e-6)
        assert is_drop or np.allclose(out, imp, atol=1e-6)  # whole batch, one map
        picks.append(is_drop)
    assert 0.6 < np.mean(picks) < 0.9  # binomial(200, 0.75): sd 0.03


def test_the_maximum_of_each_image_is_dropped():
    f = _features(3)
    out = keras.ops.convert_to_numpy(
        AttentionDropout(drop_rate=1.0, drop_threshold=0.5)(f, training=True)
    )
    att = f.mean(-1)
    for b in range(len(f)):
        i, j = np.unravel_index(att[b].argmax(), att[b].shape)
        assert np.all(out[b, i, j] == 0)


@pytest.mark.parametrize("training", [False, None])
def test_identity_at_inference(training):
    f = _features()
    out = AttentionDropout(drop_rate=1.0)(f, training=training)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(out), f)


def test_keras_contract(tmp_path):
    run_layer_test(
        AttentionDropout,
        {"drop_rate": 0.5, "drop_threshold": 0.7, "seed": 1},
        (2, 4, 4, 3),
        tmp_path=tmp_path,
    )
    layer = AttentionDropout(drop_rate=0.5, drop_threshold=0.7, seed=1, name="a")
    clone = AttentionDropout.from_config(layer.get_config())
    assert (clone.drop_rate, clone.drop_threshold, clone.seed) == (0.5, 0.7, 1)


@pytest.mark.parametrize("kwargs", [{"drop_rate": 1.5}, {"drop_threshold": -0.1}])
def test_bad_arguments_raise_naming_the_field(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        AttentionDropout(**kwargs)
