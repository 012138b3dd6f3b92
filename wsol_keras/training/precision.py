"""Numeric precision and XLA settings of a training run (`config.train`).

`precision` is a Keras dtype policy: float32, mixed_float16 (float16 compute
with dynamic loss scaling) or mixed_bfloat16 (bfloat16 compute; float32's
range, so no loss scaling). `jit_compile` is Keras' own "auto" by default.
"""

import keras

PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")


def resolve_precision(train_config):
    """The Keras dtype policy name of `config.train.precision`.

    The deprecated `config.train.mixed_precision=True` means mixed_float16.
    """
    precision = str(train_config.get("precision", "float32"))
    if precision not in PRECISIONS:
        raise ValueError(
            f"config.train.precision={precision!r}: expected one of {PRECISIONS}"
        )
    if train_config.get("mixed_precision", False):
        if precision not in ("float32", "mixed_float16"):
            raise ValueError(
                "config.train.mixed_precision=True (deprecated, means "
                f"mixed_float16) conflicts with config.train.precision={precision!r}; "
                "set only config.train.precision"
            )
        precision = "mixed_float16"
    return precision


def apply_precision(config):
    """Sets Keras' global dtype policy from the config; returns its name.

    Set every time, so a float32 run after a mixed one in the same process is
    float32. Keras' compile() wraps the optimizer in a LossScaleOptimizer for
    mixed_float16 only (bfloat16 needs no loss scaling).
    """
    policy = resolve_precision(config.train)
    keras.mixed_precision.set_global_policy(policy)
    return policy


def resolve_jit_compile(value):
    """config.train.jit_compile ("auto", "true", "false" or a bool) for compile()."""
    if isinstance(value, bool):
        return value
    choice = {"auto": "auto", "true": True, "false": False}.get(str(value).lower())
    if choice is None:
        raise ValueError(
            f"config.train.jit_compile={value!r}: expected auto, true or false"
        )
    return choice
