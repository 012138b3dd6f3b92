"""config.train.precision / jit_compile: one training step of each on CPU."""

import keras
import numpy as np
import pytest

from wsol_keras.configs import base as config_base
from wsol_keras.training import precision as precision_lib
from wsol_keras.training import trainer
from wsol_keras.models.registry import default_method_config

NUM_CLASSES = 3
SIZE = 32


def tiny_config(method, precision, jit_compile):
    config = config_base.make_smoke(config_base.base_config())
    config.data.image_size = SIZE
    config.method = default_method_config(method)
    config.train.precision = precision
    config.train.jit_compile = jit_compile
    config.train.optimizer = "sgd"
    return config


def data_info():
    return {
        "num_classes": NUM_CLASSES,
        "class_names": [f"c{i}" for i in range(NUM_CLASSES)],
        "hierarchy_sizes": [],
        "ancestors": [[] for _ in range(NUM_CLASSES)],
        "image_size": SIZE,
    }


@pytest.fixture(autouse=True)
def restore_policy():
    yield
    keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize(
    "method, precision, compute, loss_scaled, jit_compile",
    [
        ("cam", "float32", "float32", False, "auto"),
        ("cam", "mixed_float16", "float16", True, "auto"),
        # SPN: SoftProposal's float32 graph inside a bfloat16 model.
        ("spn", "mixed_bfloat16", "bfloat16", False, "auto"),
        # XLA (what "auto" picks on a GPU) with the new precision.
        ("spn", "mixed_bfloat16", "bfloat16", False, "true"),
    ],
)
def test_one_training_step(method, precision, compute, loss_scaled, jit_compile):
    config = tiny_config(method, precision, jit_compile)
    assert precision_lib.apply_precision(config) == precision
    model = trainer.build_compiled_model(config, data_info())
    # Keras wraps the optimizer for float16 only: bfloat16 needs no loss scaling.
    is_scaled = isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert is_scaled == loss_scaled
    convs = [l for l in model._flatten_layers() if isinstance(l, keras.layers.Conv2D)]
    assert convs and convs[0].compute_dtype == compute
    assert all(v.dtype == "float32" for v in model.trainable_variables)
    rng = np.random.default_rng(0)
    x = {
        "image": rng.uniform(0, 255, (4, SIZE, SIZE, 3)).astype("float32"),
        "label": np.array([0, 1, 2, 0], np.int32),
        "hierarchy": np.zeros((4, 0), np.int32),
    }
    before = [np.array(v) for v in model.trainable_variables]
    logs = model.train_on_batch(x, x["label"], return_dict=True)
    assert all(np.isfinite(float(v)) for v in logs.values()), logs
    changed = [
        not np.array_equal(b, np.array(v))
        for b, v in zip(before, model.trainable_variables)
    ]
    assert sum(changed) >= len(changed) // 2, "the step did not update the weights"


def test_jit_compile_defaults_to_keras_auto():
    config = config_base.base_config()
    assert precision_lib.resolve_jit_compile(config.train.jit_compile) == "auto"
    assert precision_lib.resolve_jit_compile("True") is True
    assert precision_lib.resolve_jit_compile(False) is False
    with pytest.raises(ValueError, match="config.train.jit_compile='xla'"):
        precision_lib.resolve_jit_compile("xla")


def test_deprecated_mixed_precision_flag_still_means_float16():
    config = config_base.base_config()
    config.train.mixed_precision = True
    assert precision_lib.resolve_precision(config.train) == "mixed_float16"
    config.train.precision = "mixed_bfloat16"
    with pytest.raises(ValueError, match="conflicts with config.train.precision"):
        precision_lib.resolve_precision(config.train)


def test_unknown_precision_is_rejected():
    config = config_base.base_config()
    config.train.precision = "bfloat16"
    with pytest.raises(ValueError, match="config.train.precision='bfloat16'"):
        precision_lib.resolve_precision(config.train)
