"""The shared layer check catches the faults it exists for."""

import keras
import pytest

from layer_test_util import run_layer_test


class _Scale(keras.layers.Layer):
    """x * factor; `get_config` forgets `factor` (the fault under test)."""

    def __init__(self, factor=1.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = float(factor)

    def call(self, inputs):
        return inputs * self.factor

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.pop("factor", None)  # Keras' automatic config would keep it
        return config


@keras.saving.register_keras_serializable(package="wsol_keras_tests")
class _RegisteredScale(_Scale):
    def get_config(self):
        return {**super().get_config(), "factor": self.factor}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class _UnregisteredScale(_RegisteredScale):
    pass


class _WrongShape(_RegisteredScale):
    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 1)


def test_passes_on_a_correct_layer(tmp_path):
    run_layer_test(_RegisteredScale, {"factor": 3.0}, (2, 3), tmp_path=tmp_path)


def test_incomplete_get_config_fails(tmp_path):
    with pytest.raises(AssertionError, match="from_config"):
        run_layer_test(_Scale, {"factor": 3.0}, (2, 3), tmp_path=tmp_path)


def test_unregistered_layer_fails_the_safe_keras_load(tmp_path):
    with pytest.raises(Exception, match="_UnregisteredScale"):
        run_layer_test(_UnregisteredScale, {"factor": 3.0}, (2, 3), tmp_path=tmp_path)


def test_wrong_compute_output_shape_fails(tmp_path):
    with pytest.raises(AssertionError, match="compute_output_shape"):
        run_layer_test(_WrongShape, {"factor": 3.0}, (2, 3), tmp_path=tmp_path)


def test_wrong_trainable_weight_count_fails(tmp_path):
    with pytest.raises(AssertionError, match="trainable weights"):
        run_layer_test(
            _RegisteredScale,
            {"factor": 3.0},
            (2, 3),
            tmp_path=tmp_path,
            expected_num_trainable_weights=1,
        )
