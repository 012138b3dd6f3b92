"""Every public layer and loss gives the same results on the JAX and TF backends.

The cases live in tests/backend_cases.py. This process (TensorFlow backend) runs
them; a subprocess runs them again with KERAS_BACKEND=jax and TensorFlow blocked
from importing, so the layers and losses are shown to need no TensorFlow.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

import backend_cases

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def both_backends(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("backends")
    (tmp / "tf").mkdir()
    (tmp / "jax").mkdir()
    tf_results = backend_cases.run_all(str(tmp / "tf"))
    env = {
        **os.environ,
        "KERAS_BACKEND": "jax",
        "JAX_PLATFORMS": "cpu",
        "PYTHONPATH": os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]),
    }
    out = tmp / "jax.npz"
    proc = subprocess.run(
        [sys.executable, os.path.join(REPO, "tests", "backend_cases.py"), str(out), str(tmp / "jax")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    with np.load(out) as f:
        jax_results = dict(f)
    return tf_results, jax_results


def case_names():
    return list(backend_cases.make_cases())


def test_every_public_layer_and_loss_is_covered():
    from wsol_keras import layers, losses
    public = {
        n
        for module in (layers, losses)
        for n in dir(module)
        if n[0].isupper() and isinstance(getattr(module, n), type)
    }
    covered = {n.split("_")[0] for n in case_names()}
    assert public <= covered, f"no backend case for {sorted(public - covered)}"


# TF's gradient of ImageProjectiveTransformV3 (keras.ops.image.affine_transform)
# is not the exact adjoint of bilinear sampling under zoom; JAX differentiates
# exactly (test_vst_jax_gradient_matches_finite_differences), so the two
# gradients of g' differ. Outputs still agree.
INEXACT_TF_GRADIENT = {"VisualStimulusTransform/grad"}


@pytest.mark.parametrize("name", case_names())
def test_jax_matches_tensorflow(both_backends, name):
    tf_results, jax_results = both_backends
    keys = sorted(k for k in tf_results if k.startswith(name + "/"))
    assert keys and keys == sorted(k for k in jax_results if k.startswith(name + "/"))
    for key in keys:
        if key in INEXACT_TF_GRADIENT:
            continue
        a, b = tf_results[key], jax_results[key]
        assert a.shape == b.shape, key
        assert np.all(np.isfinite(b)), f"{key}: non-finite values on JAX"
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5, err_msg=key)


@pytest.mark.parametrize("backend", ["tf", "jax"])
@pytest.mark.parametrize("name", case_names())
def test_gradient_finite_and_keras_file_round_trip(both_backends, backend, name):
    results = both_backends[0 if backend == "tf" else 1]
    grad = results[f"{name}/grad"]
    assert np.all(np.isfinite(grad)) and np.any(grad != 0), f"{name}: bad gradient"
    loaded = [k for k in results if k.startswith(f"{name}/loaded/")]
    assert loaded
    for key in loaded:
        original = results[key.replace("/loaded/", "/")]
        np.testing.assert_allclose(results[key], original, rtol=1e-6, atol=1e-7, err_msg=key)


def test_vst_jax_gradient_matches_finite_differences(both_backends):
    """Central differences of the (backend-independent) forward, here on TF."""
    import keras

    _, inputs, run, _ = backend_cases.make_cases()["VisualStimulusTransform"]
    obj = backend_cases.make_cases()["VisualStimulusTransform"][0]

    def total(cams):
        outs = run(obj, {**inputs, "cams": cams.astype("float32")})
        return sum(
            float(np.sum(np.square(np.asarray(keras.ops.convert_to_numpy(v), np.float64))))
            for v in outs.values()
        )

    jax_grad = both_backends[1]["VisualStimulusTransform/grad"]
    cams = inputs["cams"].astype(np.float64)
    h = 1e-2
    for idx in [(0, 0, 0, 0), (0, 3, 4, 1), (1, 2, 5, 2)]:
        up, down = cams.copy(), cams.copy()
        up[idx] += h
        down[idx] -= h
        numeric = (total(up) - total(down)) / (2 * h)
        assert abs(jax_grad[idx] - numeric) <= 1e-2 * max(1.0, abs(numeric)), idx
