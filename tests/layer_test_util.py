"""One shared check for every public layer, in the spirit of Keras' `run_layer_test`.

`run_layer_test` constructs the layer from keyword arguments, calls it on
random inputs, and checks:

* output shapes equal `compute_output_shape` and output dtypes the expected ones;
* the number of trainable (and non-trainable) weights;
* `get_config` -> `from_config` gives the same config, and the clone (with the
  original's weights) the same outputs;
* a functional model around the layer survives a `.keras` file: loaded with
  `safe_mode=True` and no `custom_objects` (the layer must be a registered
  serializable), it holds an instance of the same class and gives the same
  outputs.

Numeric behaviour (the papers' equations against numpy) stays in each layer's
own tests; this helper covers the Keras contract they all share.
"""

import keras
import numpy as np


def _is_shape(x):
    return isinstance(x, (tuple, list)) and all(
        d is None or isinstance(d, (int, np.integer)) for d in x
    )


def _flatten_shapes(structure):
    """Leaves of a compute_output_shape result (a shape, or a tuple/dict of them)."""
    if _is_shape(structure):
        return [tuple(structure)]
    if isinstance(structure, dict):
        return [s for k in sorted(structure) for s in _flatten_shapes(structure[k])]
    return [s for item in structure for s in _flatten_shapes(item)]


def _random_inputs(shapes, dtypes, seed):
    rng = np.random.default_rng(seed)
    out = []
    for shape, dtype in zip(shapes, dtypes):
        if np.issubdtype(np.dtype(dtype), np.integer):
            out.append(rng.integers(0, 2, size=shape).astype(dtype))
        else:
            out.append(rng.uniform(0.0, 1.0, size=shape).astype(dtype))
    return out


def _assert_outputs_equal(got, expected, rtol, atol, what):
    got, expected = keras.tree.flatten(got), keras.tree.flatten(expected)
    assert len(got) == len(expected), what
    for g, e in zip(got, expected):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(g),
            keras.ops.convert_to_numpy(e),
            rtol=rtol,
            atol=atol,
            err_msg=what,
        )


def run_layer_test(
    layer_cls,
    init_kwargs,
    input_shape,
    *,
    tmp_path,
    input_dtype="float32",
    input_data=None,
    call_kwargs=None,
    expected_output_dtype="float32",
    expected_num_trainable_weights=0,
    expected_num_non_trainable_weights=0,
    rtol=1e-6,
    atol=1e-6,
):
    """Runs the shared layer checks; returns the layer's outputs on the inputs.

    Args:
        layer_cls: the layer class.
        init_kwargs: its constructor arguments.
        input_shape: one shape (with batch), or a list of shapes for a layer
            called with several positional inputs.
        tmp_path: folder for the `.keras` file.
        input_dtype: dtype of every input (or a list, one per input).
        input_data: inputs to use instead of random ones (same structure).
        call_kwargs: extra keyword arguments of every call (e.g. training).
        expected_output_dtype: dtype of every output (or a flat list, in the
            order of `keras.tree.flatten` of the outputs).
        expected_num_trainable_weights / expected_num_non_trainable_weights:
            weight counts after the first call.
        rtol, atol: tolerance of the output comparisons.
    """
    call_kwargs = dict(call_kwargs or {})
    several = isinstance(input_shape, list)
    shapes = [tuple(s) for s in input_shape] if several else [tuple(input_shape)]
    dtypes = (
        list(input_dtype)
        if isinstance(input_dtype, (list, tuple))
        else [input_dtype] * len(shapes)
    )
    if input_data is None:
        args = _random_inputs(shapes, dtypes, seed=0)
    else:
        args = list(input_data) if several else [input_data]
    name = layer_cls.__name__

    layer = layer_cls(**init_kwargs)
    outputs = layer(*args, **call_kwargs)

    # Output shapes and dtypes.
    flat = keras.tree.flatten(outputs)
    declared = _flatten_shapes(layer.compute_output_shape(*shapes))
    assert [tuple(o.shape) for o in flat] == declared, (
        f"{name}: output shapes {[tuple(o.shape) for o in flat]} != "
        f"compute_output_shape {declared}"
    )
    want = (
        list(expected_output_dtype)
        if isinstance(expected_output_dtype, (list, tuple))
        else [expected_output_dtype] * len(flat)
    )
    got = [keras.backend.standardize_dtype(o.dtype) for o in flat]
    assert got == want, f"{name}: output dtypes {got} != {want}"

    # Weights.
    assert len(layer.trainable_weights) == expected_num_trainable_weights, (
        f"{name}: {len(layer.trainable_weights)} trainable weights"
    )
    assert len(layer.non_trainable_weights) == expected_num_non_trainable_weights, (
        f"{name}: {len(layer.non_trainable_weights)} non-trainable weights"
    )

    # get_config -> from_config.
    config = layer.get_config()
    clone = layer_cls.from_config(config)
    assert clone.get_config() == config, f"{name}: from_config changed the config"
    clone(*args, **call_kwargs)  # builds the clone
    clone.set_weights(layer.get_weights())
    _assert_outputs_equal(
        clone(*args, **call_kwargs), outputs, rtol, atol, f"{name}: from_config clone"
    )

    # .keras file, safe mode, no custom objects.
    inputs = [
        keras.Input(shape=s[1:], batch_size=s[0], dtype=d) for s, d in zip(shapes, dtypes)
    ]
    model = keras.Model(
        inputs if several else inputs[0],
        layer_cls(**init_kwargs)(*inputs, **call_kwargs),
    )
    path = str(tmp_path / f"{name}.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    restored = [l for l in loaded.layers if type(l) is layer_cls]
    assert len(restored) == 1, f"{name}: not restored as itself from {path}"
    model_args = args if several else args[0]
    _assert_outputs_equal(
        loaded(model_args), model(model_args), rtol, atol, f"{name}: .keras"
    )
    return outputs
