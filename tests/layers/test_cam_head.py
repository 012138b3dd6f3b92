"""Tests of CAMHead (CAM, Zhou et al. 2016, Sec. 2; ACoL Sec. 3.1) against numpy."""

import numpy as np
import pytest

from layer_test_util import run_layer_test
from wsol_keras.layers.cam_head import CAMHead, global_average_logits


def test_class_maps_are_the_1x1_classifier_on_each_position():
    """M_c(x, y) = sum_k w_kc f_k(x, y) + b_c; logits = GAP of M (CAM Eq. 1-2)."""
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(2, 3, 4, 5)).astype(np.float32)
    head = CAMHead(6)
    maps = np.asarray(head(feats))
    w = np.asarray(head.classifier.kernel)[0, 0]  # [5, 6]
    b = np.asarray(head.classifier.bias)
    expected = np.einsum("bhwk,kc->bhwc", feats, w) + b
    np.testing.assert_allclose(maps, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        np.asarray(global_average_logits(maps)), expected.mean(axis=(1, 2)), rtol=1e-5
    )


@pytest.mark.parametrize(
    "conv_filters, num_weights", [((), 2), ((4,), 4), ((4, 3), 6)]
)
def test_keras_layer_contract(tmp_path, conv_filters, num_weights):
    # kernel + bias per 3x3 conv, and of the 1x1 classifier.
    run_layer_test(
        CAMHead,
        {"num_classes": 3, "conv_filters": conv_filters},
        (2, 5, 5, 2),
        tmp_path=tmp_path,
        expected_num_trainable_weights=num_weights,
        rtol=1e-5,
        atol=1e-5,
    )


def test_invalid_num_classes():
    with pytest.raises(ValueError, match="num_classes"):
        CAMHead(0)


def test_keras_layer_contract_with_a_classifier_initializer(tmp_path):
    # The classifier's own initializer survives get_config / a .keras file.
    run_layer_test(
        CAMHead,
        {
            "num_classes": 3,
            "conv_filters": (4,),
            "classifier_initializer": {
                "class_name": "RandomNormal",
                "config": {"mean": 0.0, "stddev": 0.01, "seed": None},
            },
        },
        (2, 5, 5, 2),
        tmp_path=tmp_path,
        expected_num_trainable_weights=4,
        rtol=1e-5,
        atol=1e-5,
    )
