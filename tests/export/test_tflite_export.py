"""TFLite export (wsol_keras.export.tflite_lib, export/export_tflite.py) run with LiteRT.

References are the Keras model's outputs and, for heat maps and boxes, an
independent numpy computation (cv2 bicubic upsampling as wsolevaluation, numpy
min-max, the evaluator's cv2 box path). The int8 GT-known Loc comparison on
the synthetic test set needs a trained model and lives in
bench/export_latency.py (see bench/BENCHMARKS_export.md).
"""

import json
import os
import subprocess
import sys

import keras
import cv2
import numpy as np
import pytest
import tensorflow as tf

from wsol_keras.localization import boxes as boxes_lib
from wsol_keras.configs import base as config_base
from wsol_keras.models import registry as methods
from wsol_keras.training import trainer
from wsol_keras.training import workdir as workdir_lib
from wsol_keras.export import inference
from wsol_keras.export import tflite_lib as tflite

ROOT = os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
)
S = 32
THRESHOLD = 0.3
DATA_INFO = {
    "num_classes": 8,
    "class_names": [f"class_{i}" for i in range(8)],
    "hierarchy_sizes": [4, 2],
    "image_size": S,
}


def make_config(method="cam"):
    config = config_base.make_smoke(config_base.base_config())
    config.method = methods.default_method_config(method)
    config.data.image_size = S
    return config


def build(method="cam", seed=0):
    keras.utils.set_random_seed(seed)
    config = make_config(method)
    return trainer.build_compiled_model(config, DATA_INFO), config


def convert(model, config, variant, threshold=THRESHOLD, **kwargs):
    """tflite_lib.convert of the model's inference graph."""
    module = inference.InferenceModule(model, config, threshold)
    return tflite.convert(module, variant, **kwargs)


def images(n=4, seed=3):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:S, 0:S]
    out = []
    for _ in range(n):
        cy, cx = rng.uniform(8, 24, size=2)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 40.0)
        img = (
            40
            + 180 * blob[..., None] * rng.uniform(0.4, 1, 3)
            + rng.normal(0, 10, (S, S, 3))
        )
        out.append(np.clip(img, 0, 255).astype(np.uint8))
    return np.stack(out)


def reference_heatmap(cams, logits, k=1):
    ids = np.argsort(-logits, kind="stable")[:k]
    raw = cams[..., ids].mean(-1)
    up = cv2.resize(np.asarray(raw, np.float32), (S, S), interpolation=cv2.INTER_CUBIC)
    lo, hi = up.min(), up.max()
    return (up - lo) / (hi - lo)


@pytest.fixture(scope="module")
def cam_model():
    return build("cam")


@pytest.fixture(scope="module")
def float32_cam(cam_model):
    model, config = cam_model
    content, info = convert(model, config, "float32", postprocess="box")
    return content, info


def test_float32_matches_keras(cam_model, float32_cam):
    model, _ = cam_model
    content, info = float32_cam
    lite = tflite.LiteRTModel(content)
    assert lite.input_shape == (1, S, S, 3) and lite.input_dtype == np.float32
    for image in images():
        x = image[None].astype(np.float32)
        want = model(x, training=False)
        got = lite(x)
        np.testing.assert_allclose(got["logits"], want["logits"], atol=1e-4, rtol=0)
        np.testing.assert_allclose(got["cams"], want["cams"], atol=1e-4, rtol=0)
        heat = reference_heatmap(want["cams"].numpy()[0], want["logits"].numpy()[0])
        np.testing.assert_allclose(got["heatmap"][0], heat, atol=1e-4)
        if "box" in got:
            box = boxes_lib.boxes_from_scoremap(
                got["heatmap"][0].astype(np.float64), [THRESHOLD]
            )
            np.testing.assert_array_equal(got["box"][0], box[0][0][0])


def test_conversion_level_is_recorded(float32_cam):
    _, info = float32_cam
    assert info["variant"] == "float32"
    assert info["postprocess_in_graph"] in ("box", "heatmap")
    if info["postprocess_in_graph"] == "heatmap":
        # The box level failed and says which ops did not convert.
        assert info["conversion_fallback"]
    else:
        assert info["conversion_fallback"] is None


def test_host_postprocess_matches_evaluator_path(cam_model):
    model, _ = cam_model
    x = images(1)[0][None].astype(np.float32)
    out = model(x, training=False)
    cams, logits = out["cams"].numpy(), out["logits"].numpy()
    outs = {"cams": cams, "logits": logits}
    heat, box = tflite.postprocess(outs, S, THRESHOLD)
    want = reference_heatmap(cams[0], logits[0])
    np.testing.assert_allclose(heat, want, atol=1e-5)
    want_box = boxes_lib.boxes_from_scoremap(want, [THRESHOLD])[0][0][0]
    np.testing.assert_array_equal(box, want_box)
    heat2, _ = tflite.postprocess(outs, S, THRESHOLD, "topk", topk=3)
    np.testing.assert_allclose(
        heat2, reference_heatmap(cams[0], logits[0], k=3), atol=1e-5
    )
    # GT-known: the map of a given class.
    heat3, _ = tflite.postprocess(outs, S, THRESHOLD, class_ids=[5])
    raw = cams[0, ..., 5]
    up = cv2.resize(np.asarray(raw, np.float32), (S, S), interpolation=cv2.INTER_CUBIC)
    np.testing.assert_allclose(
        heat3, (up - up.min()) / (up.max() - up.min()), atol=1e-5
    )


def test_topk_heatmap_in_graph(cam_model):
    model, config = cam_model
    config = config.copy_and_resolve_references()
    config.eval.map_method = "topk"
    config.eval.topk = 2
    content, info = convert(model, config, "float32", postprocess="heatmap")
    assert info["postprocess_in_graph"] == "heatmap"
    lite = tflite.LiteRTModel(content)
    x = images(1)[0][None].astype(np.float32)
    got = lite(x)
    assert "box" not in got
    np.testing.assert_allclose(
        got["heatmap"][0],
        reference_heatmap(got["cams"][0], got["logits"][0], k=2),
        atol=1e-4,
    )


def _corr(a, b):
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


@pytest.mark.slow
def test_quantized_variants(cam_model, float32_cam):
    model, config = cam_model
    calib = images(16, seed=11)
    f32 = tflite.LiteRTModel(float32_cam[0])
    sizes = {"float32": len(float32_cam[0])}
    test = images(4)
    for variant in ("float16", "dynamic_int8", "int8"):
        content, info = convert(
            model, config, variant, calibration_images=calib, postprocess="heatmap"
        )
        sizes[variant] = len(content)
        lite = tflite.LiteRTModel(content)
        if variant == "int8":
            assert (
                lite.input_dtype == np.uint8 and info["postprocess_in_graph"] == "none"
            )
        else:
            assert info["postprocess_in_graph"] == "heatmap"
        for image in test:
            ref = f32(image[None].astype(np.float32))
            got = lite(image[None].astype(np.float32))
            assert np.isfinite(got["cams"]).all()
            # Quantized class maps keep the float model's spatial pattern.
            assert _corr(got["cams"], ref["cams"]) > 0.95, variant
    # float16 halves and int8 quarters the weights (plus a fixed overhead).
    assert sizes["float16"] < 0.6 * sizes["float32"]
    assert sizes["dynamic_int8"] < 0.4 * sizes["float32"]
    assert sizes["int8"] < 0.4 * sizes["float32"]


def test_int8_needs_calibration_and_variants_are_checked(cam_model):
    model, config = cam_model
    with pytest.raises(ValueError, match="calibration"):
        convert(model, config, "int8")
    with pytest.raises(ValueError, match="bfloat"):
        convert(model, config, "bfloat")
    with pytest.raises(ValueError, match="postprocess"):
        convert(model, config, "float32", postprocess="everything")
    with pytest.raises(ValueError, match="unknown TFLite variants"):
        tflite.export_tflite("/nonexistent", "/tmp/x", variants=("float64",))


@pytest.mark.slow
@pytest.mark.parametrize("method", sorted(methods.METHODS))
def test_float32_every_method(method):
    model, config = build(method)
    content, info = convert(model, config, "float32", postprocess="heatmap")
    lite = tflite.LiteRTModel(content)
    x = images(1)[0][None].astype(np.float32)
    want = model(x, training=False)
    got = lite(x)
    np.testing.assert_allclose(got["logits"], want["logits"], atol=1e-4, rtol=0)
    np.testing.assert_allclose(got["cams"], want["cams"], atol=1e-4, rtol=0)
    if "boxes" in want:  # a regressor's box, in the S x S frame
        box = np.clip(np.asarray(want["boxes"]), 0, 1) * (S - 1)
        np.testing.assert_allclose(got["box"], box, atol=1e-3)
    else:
        assert "box" not in got


@pytest.mark.slow
def test_export_tflite_program(tmp_path):
    model, config = build("cam")
    wd = str(tmp_path / "wd")
    workdir_lib.write_config(wd, config, DATA_INFO)
    workdir_lib.save_weights_atomic(model, workdir_lib.final_weights_path(wd))
    workdir_lib.write_json_atomic(
        os.path.join(wd, "metrics.json"), {"cam_threshold": 0.25}
    )
    out = tmp_path / "lite"
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "export", "export_tflite.py"),
            f"--workdir={wd}",
            f"--output={out}",
            "--variants=float32,int8",
            "--num_calibration=8",
            "--postprocess=heatmap",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = json.loads((out / tflite.MANIFEST_FILE).read_text())
    assert manifest["cam_threshold"] == 0.25 and manifest["input_size"] == S
    assert manifest["class_names"] == DATA_INFO["class_names"]
    assert sorted(manifest["variants"]) == ["float32", "int8"]
    for variant, info in manifest["variants"].items():
        path = out / info["file"]
        assert path.stat().st_size == info["bytes"]
    assert manifest["variants"]["int8"]["input_dtype"] == "uint8"
    assert manifest["variants"]["float32"]["outputs"] == ["cams", "heatmap", "logits"]
    lite = tflite.LiteRTModel(str(out / manifest["variants"]["float32"]["file"]))
    x = images(1)[0][None].astype(np.float32)
    np.testing.assert_allclose(
        lite(x)["logits"], model(x, training=False)["logits"], atol=1e-4
    )
