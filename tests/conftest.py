"""Suite-wide fixtures."""

import keras
import pytest


@pytest.fixture(autouse=True)
def _global_dtype_policy_is_float32():
    """Each test starts from Keras' float32 policy: a test that sets a mixed
    policy (precision tests) must not change the numbers of the tests that a
    parallel worker runs after it."""
    keras.config.set_dtype_policy("float32")
    yield
    keras.config.set_dtype_policy("float32")
