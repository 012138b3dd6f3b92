"""SavedModel export (wsol_keras.export, wsol-export) and TF Serving requests.

Every method in METHODS is exported from a fake workdir (smoke config, random
weights, 32 px), reloaded in a fresh Python process that can only import
TensorFlow, and its three signatures are compared with the in-memory model.
The expected outputs of the signatures are computed here independently: the
Keras model on resized images, numpy softmax / top-k / min-max, and the
evaluator's cv2 box path (wsol_keras.localization.boxes.boxes_from_scoremap) scaled back to
each original image (x * W / S, y * H / S).
"""

import base64
import hashlib
import json
import os
import subprocess
import sys

import keras
import cv2
import numpy as np
import pytest
import tensorflow as tf

from file_modules import load_module
from wsol_keras.localization import boxes as boxes_lib
from wsol_keras.configs import base as config_base
from wsol_keras.models import registry as methods
from wsol_keras.evaluation import records as eval_records
from wsol_keras.training import trainer
from wsol_keras.localization import maps
from wsol_keras.training import workdir as workdir_lib
from wsol_keras.export import inference
from wsol_keras.export import saved_model_lib

ROOT = os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
)
S = 32
THRESHOLD = 0.35
DATA_INFO = {
    "num_classes": 8,
    "class_names": [f"class_{i}" for i in range(8)],
    "hierarchy_sizes": [4, 2],
    "image_size": S,
}
METRICS = {"cam_threshold": THRESHOLD, "gt_known_loc": 42.5, "top1_cls": 61.0}
DGL_KEY = "cam-dgl"


client = load_module(
    "wsol_serving_client", os.path.join(ROOT, "export", "serving", "client.py")
)


def make_config(method):
    """The method's synthetic smoke config at S px (base config if none)."""
    path = os.path.join(ROOT, "configs", f"synthetic_{method}.py")
    if os.path.exists(path):
        config = load_module(f"cfg_{method}", path).get_config("smoke")
    else:
        config = config_base.make_smoke(config_base.base_config())
        config.method = methods.default_method_config(method)
    config.data.image_size = S
    return config


def make_workdir(path, method, map_method=None, metrics=METRICS, seed=0):
    """A workdir as wsol-train leaves it (config.json, weights, report, record)."""
    config = make_config(method)
    if map_method == "dgl":
        config.eval.map_method = "dgl"
        config.eval.dgl_layer = "backbone/small_cnn_features/stage3_relu3"
    keras.utils.set_random_seed(seed)
    model = trainer.build_compiled_model(config, DATA_INFO)
    workdir_lib.write_config(path, config, DATA_INFO)
    workdir_lib.save_weights_atomic(model, workdir_lib.final_weights_path(path))
    if metrics is not None:
        # The evaluation record wsol-train writes (eval_records), and its copy
        # as the training report.
        weights = workdir_lib.final_weights_path(path)
        record = dict(
            metrics,
            split="test",
            map_method=config.eval.map_method,
            layer=eval_records.layer_of(config),
            topk=eval_records.topk_of(config),
            max_images=config.eval.max_images,
            cam_threshold_source="val search",
            weights_sha256=hashlib.sha256(open(weights, "rb").read()).hexdigest(),
        )
        key = eval_records.record_key("test", config)
        for folder in (os.path.join(path, "eval", key), path):
            workdir_lib.write_json_atomic(os.path.join(folder, "metrics.json"), record)
    return path


def _blobs(rng, h, w):
    """A smooth RGB image (JPEG-friendly) with a bright blob."""
    yy, xx = np.mgrid[0:h, 0:w]
    cy, cx = rng.uniform(0.3, 0.7) * h, rng.uniform(0.3, 0.7) * w
    blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (0.05 * h * w))
    base = rng.uniform(20, 80, size=3)
    img = base + 170 * blob[..., None] * rng.uniform(0.5, 1.0, size=3)
    img += rng.normal(0, 8, size=img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def make_inputs():
    rng = np.random.default_rng(7)
    raw = [_blobs(rng, 40, 50), _blobs(rng, 64, 48), _blobs(rng, 32, 32)]
    encoded = [
        tf.io.encode_png(raw[0]).numpy(),
        tf.io.encode_jpeg(raw[1], quality=95).numpy(),
        tf.io.encode_png(raw[2]).numpy(),
    ]
    tensor = np.stack([_blobs(rng, 45, 37), _blobs(rng, 45, 37)])
    return raw, encoded, tensor


FRESH_PROCESS = r"""
import json, sys
import numpy as np
import tensorflow as tf
spec = json.load(open(sys.argv[1]))
inputs = np.load(sys.argv[2])
encoded = [bytes(b) for b in inputs["encoded"]]
report = {}
for key, (path, out_path) in spec.items():
    loaded = tf.saved_model.load(path)
    sigs = loaded.signatures
    out = {}
    for name, arg in (("serving_default", tf.constant(encoded)),
                      ("image_bytes", tf.constant(encoded)),
                      ("image_tensor", tf.constant(inputs["tensor"]))):
        for k, v in sigs[name](images=arg).items():
            out[name + "/" + k] = v.numpy()
    np.savez(out_path, **out)
    errors = {}
    for case, bad in (("garbage", [encoded[0], b"this is not an image"]),
                      ("truncated", [encoded[1][:60]])):
        try:
            sigs["image_bytes"](images=tf.constant(bad))
            errors[case] = ["no error", ""]
        except Exception as e:
            errors[case] = [type(e).__name__, str(e)[:2000]]
    report[key] = {"signatures": sorted(sigs.keys()), "errors": errors,
                   "model_card": loaded.model_card.asset_path.numpy().decode()}
report["_modules"] = sorted(m for m in sys.modules if m.startswith("wsol"))
print(json.dumps(report))
"""


def _clean_env():
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # the fresh process cannot import wsol_keras
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    return env


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Exports every method (and one DGL model); runs the fresh process once."""
    base = tmp_path_factory.mktemp("export")
    raw, encoded, tensor = make_inputs()
    entries = {}
    cases = [(m, m, None) for m in sorted(methods.METHODS)] + [(DGL_KEY, "cam", "dgl")]
    for key, method, map_method in cases:
        wd = make_workdir(str(base / f"wd_{key}"), method, map_method)
        path = saved_model_lib.export_saved_model(
            wd, str(base / "models"), model_name=key, version=1
        )
        model, config, _ = workdir_lib.load_model(wd)
        fns = inference.InferenceModule(model, config, THRESHOLD)
        memory = {}
        for name, fn, arg in (
            ("image_bytes", fns.image_bytes, tf.constant(encoded)),
            ("image_tensor", fns.image_tensor, tf.constant(tensor)),
        ):
            memory.update({f"{name}/{k}": v.numpy() for k, v in fn(arg).items()})
        entries[key] = {
            "path": path,
            "model": model,
            "config": config,
            "memory": memory,
        }
    spec_path = str(base / "spec.json")
    with open(spec_path, "w") as f:
        json.dump(
            {k: [e["path"], str(base / f"fresh_{k}.npz")] for k, e in entries.items()},
            f,
        )
    inputs_path = str(base / "inputs.npz")
    np.savez(inputs_path, encoded=np.array(encoded, dtype=object), tensor=tensor)
    script = str(base / "fresh.py")
    with open(script, "w") as f:
        f.write(
            FRESH_PROCESS.replace(
                "np.load(sys.argv[2])", "np.load(sys.argv[2], allow_pickle=True)"
            )
        )
    proc = subprocess.run(
        [sys.executable, script, spec_path, inputs_path],
        capture_output=True,
        text=True,
        env=_clean_env(),
        cwd=str(base),
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    for key, e in entries.items():
        e["fresh"] = dict(np.load(str(base / f"fresh_{key}.npz")))
        e["report"] = report[key]
    return {
        "entries": entries,
        "raw": raw,
        "encoded": encoded,
        "tensor": tensor,
        "modules": report["_modules"],
        "base": str(base),
    }


KEYS = sorted(methods.METHODS) + [DGL_KEY]


@pytest.mark.slow
def test_fresh_process_imported_only_tensorflow(exported):
    assert exported["modules"] == []


@pytest.mark.slow
@pytest.mark.parametrize("key", KEYS)
def test_reloaded_signatures_equal_in_memory(exported, key):
    e = exported["entries"][key]
    assert e["report"]["signatures"] == [
        "image_bytes",
        "image_tensor",
        "serving_default",
    ]
    for name in ("image_bytes", "image_tensor"):
        for out in inference.OUTPUT_KEYS:
            want = e["memory"][f"{name}/{out}"]
            got = e["fresh"][f"{name}/{out}"]
            assert got.dtype == want.dtype and got.shape == want.shape, (name, out)
            np.testing.assert_allclose(
                got, want, atol=1e-5, rtol=0, err_msg=f"{name}/{out}"
            )
    for out in inference.OUTPUT_KEYS:  # serving_default is image_bytes
        np.testing.assert_array_equal(
            e["fresh"][f"serving_default/{out}"], e["fresh"][f"image_bytes/{out}"]
        )


def _softmax(x):
    z = np.exp(x - x.max(-1, keepdims=True))
    return z / z.sum(-1, keepdims=True)


def _minmax(m):
    lo, hi = m.min(), m.max()
    return np.zeros_like(m) if hi <= lo else (m - lo) / (hi - lo)


def expected_outputs(model, config, images_hw3, explainer=None):
    """Independent reference for one batch of original uint8 images."""
    resized = np.stack(
        [
            tf.image.resize(im, [S, S], method="bilinear", antialias=True).numpy()
            for im in images_hw3
        ]
    )
    resized = np.clip(np.round(resized), 0, 255).astype(np.float32)
    out = {k: np.asarray(v) for k, v in model(resized, training=False).items()}
    probs = _softmax(out["logits"].astype(np.float64))
    k = min(inference.DEFAULT_TOP_K, probs.shape[1])
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    res = {
        "classes": order,
        "scores": np.take_along_axis(probs, order, 1),
        "boxes": [],
        "heatmaps": [],
    }
    for b, im in enumerate(images_hw3):
        h, w = im.shape[:2]
        if explainer is not None:
            raw = explainer(resized[b : b + 1], labels=order[b : b + 1, 0])[
                config.eval.dgl_layer
            ][0].numpy()
        elif config.eval.map_method == "topk":
            # SLT-Net Eq. 9: the localizer's own logits rank the K classes.
            rank = out.get("localizer_logits", out["logits"])[b]
            top = np.argsort(-rank, kind="stable")[: config.eval.topk]
            raw = out["cams"][b][..., top].mean(-1)
        else:
            raw = out["cams"][b][..., order[b, 0]]
        up = cv2.resize(np.asarray(raw, np.float32), (S, S), interpolation=cv2.INTER_CUBIC)
        heat = _minmax(up.astype(np.float64))
        res["heatmaps"].append(heat)
        if "boxes" in out:
            box_s = np.clip(out["boxes"][b], 0, 1) * (S - 1)
        else:
            box_s = boxes_lib.boxes_from_scoremap(heat, [THRESHOLD])[0][0][0]
        res["boxes"].append(
            np.asarray(box_s, np.float64) * [w / S, h / S, w / S, h / S]
        )
    res["boxes"] = np.stack(res["boxes"])
    res["heatmaps"] = np.stack(res["heatmaps"])
    return res


@pytest.mark.slow
@pytest.mark.parametrize("key", KEYS)
def test_signatures_match_independent_pipeline(exported, key):
    e = exported["entries"][key]
    explainer = None
    if key == DGL_KEY:
        from wsol_keras.localization.dual_gradient import DualGradient

        explainer = DualGradient(e["model"], [e["config"].eval.dgl_layer], method="dgl")
    cases = (
        (
            "image_bytes",
            [tf.io.decode_image(b, channels=3).numpy() for b in exported["encoded"]],
        ),
        ("image_tensor", list(exported["tensor"])),
    )
    for name, images in cases:
        want = expected_outputs(e["model"], e["config"], images, explainer)
        got = {k: e["fresh"][f"{name}/{k}"] for k in inference.OUTPUT_KEYS}
        np.testing.assert_array_equal(got["classes"], want["classes"], err_msg=name)
        np.testing.assert_allclose(
            got["scores"], want["scores"], atol=1e-5, err_msg=name
        )
        np.testing.assert_allclose(
            got["heatmaps"], want["heatmaps"], atol=1e-5, err_msg=name
        )
        np.testing.assert_allclose(got["boxes"], want["boxes"], atol=1e-4, err_msg=name)
        assert got["heatmaps"].min() >= 0 and got["heatmaps"].max() <= 1


@pytest.mark.slow
def test_box_scales_to_each_original_image(exported):
    """Same picture at two sizes: the box scales with the picture."""
    e = exported["entries"]["cam"]
    small = exported["raw"][2]  # 32 x 32 == S: box in S pixels
    big = np.repeat(np.repeat(small, 3, axis=0), 2, axis=1)  # 96 x 64
    fns = inference.InferenceModule(e["model"], e["config"], THRESHOLD)
    out_small = fns.image_tensor(tf.constant(small[None]))
    encoded = [tf.io.encode_png(big).numpy()]
    out_big = fns.image_bytes(tf.constant(encoded))
    hm_small = out_small["heatmaps"].numpy()[0]
    box_s = boxes_lib.boxes_from_scoremap(hm_small.astype(np.float64), [THRESHOLD])[0][
        0
    ][0]
    np.testing.assert_allclose(out_small["boxes"].numpy()[0], box_s, atol=1e-5)
    hm_big = out_big["heatmaps"].numpy()[0]
    box_b = boxes_lib.boxes_from_scoremap(hm_big.astype(np.float64), [THRESHOLD])[0][0][
        0
    ]
    np.testing.assert_allclose(
        out_big["boxes"].numpy()[0],
        np.multiply(box_b, [64 / S, 96 / S, 64 / S, 96 / S]),
        atol=1e-4,
    )


@pytest.mark.slow
def test_corrupt_image_gives_invalid_argument(exported):
    errors = exported["entries"]["cam"]["report"]["errors"]
    kind, message = errors["garbage"]
    assert kind == "InvalidArgumentError"
    assert "is not an encoded JPEG, PNG, GIF, BMP or WebP image" in message
    assert "[1]" in message  # names the offending batch element
    kind, message = errors["truncated"]
    assert kind == "InvalidArgumentError"
    assert "JPEG" in message or "jpeg" in message


@pytest.mark.slow
def test_saved_model_cli_lists_signatures(exported):
    path = exported["entries"]["cam"]["path"]
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    proc = subprocess.run(
        [cli, "show", "--dir", path, "--all"],
        capture_output=True,
        text=True,
        env=_clean_env(),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = proc.stdout
    for sig in ("serving_default", "image_bytes", "image_tensor"):
        assert f"signature_def['{sig}']" in text
    assert "dtype: DT_STRING" in text and "dtype: DT_UINT8" in text
    for out in inference.OUTPUT_KEYS:
        assert f"outputs['{out}']" in text
    assert "inputs['images']" in text


@pytest.mark.slow
def test_layout_assets_and_model_card(exported):
    e = exported["entries"]["cam"]
    path = e["path"]
    model_dir = os.path.dirname(path)
    assert os.path.basename(path) == "1"
    assert sorted(os.listdir(model_dir)) == ["1"]  # no temporary folder left
    assert sorted(os.listdir(os.path.join(path, "assets"))) == [
        "config.json",
        "model_card.json",
    ]
    assert e["report"]["model_card"].endswith("assets/model_card.json")
    card = saved_model_lib.read_model_card(path)
    assert card["class_names"] == DATA_INFO["class_names"]
    assert card["input_size"] == S and card["heatmap_size"] == S
    assert card["cam_threshold"] == THRESHOLD
    assert card["cam_threshold_source"] == "val search (eval/test-cam/metrics.json)"
    assert card["eval_record"]["path"] == "eval/test-cam/metrics.json"
    assert card["test_metrics"]["gt_known_loc"] == 42.5
    assert card["test_metrics"]["map_method"] == card["map_method"] == "cam"
    assert card["method"] == "cam" and card["top_k"] == 5
    with open(os.path.join(path, "assets", "config.json")) as f:
        cfg = json.load(f)
    assert cfg["data_info"] == DATA_INFO
    assert cfg["config"]["data"]["image_size"] == S


@pytest.mark.slow
def test_versions_and_overwrite(tmp_path):
    wd = make_workdir(str(tmp_path / "wd"), "cam")
    base = str(tmp_path / "models")
    first = saved_model_lib.export_saved_model(wd, base, model_name="m")
    second = saved_model_lib.export_saved_model(wd, base, model_name="m")
    assert [os.path.basename(first), os.path.basename(second)] == ["1", "2"]
    with pytest.raises(FileExistsError, match="2"):
        saved_model_lib.export_saved_model(wd, base, model_name="m", version=2)
    assert sorted(os.listdir(os.path.join(base, "m"))) == ["1", "2"]
    with pytest.raises(ValueError, match="model_name"):
        saved_model_lib.export_saved_model(wd, base, model_name="bad name/")


def test_cam_threshold_resolution(tmp_path):
    config = make_config("cam")
    assert eval_records.resolve_cam_threshold(None, config) == (0.2, "default")
    with config.unlocked():
        config.eval.cam_threshold = 0.4
    assert eval_records.resolve_cam_threshold(str(tmp_path), config) == (
        0.4,
        "config.eval.cam_threshold",
    )
    # A workdir from before evaluation records: its metrics.json (documented).
    (tmp_path / "metrics.json").write_text('{"cam_threshold": 0.27}')
    assert eval_records.resolve_cam_threshold(str(tmp_path), config) == (
        0.27,
        eval_records.LEGACY_SOURCE,
    )
    (tmp_path / "metrics.json").write_text('{"cam_threshold": 3.0}')
    with pytest.raises(ValueError, match="metrics.json"):
        eval_records.resolve_cam_threshold(str(tmp_path), config)
    (tmp_path / "metrics.json").write_text("{oops")
    with pytest.raises(ValueError, match="metrics.json"):
        eval_records.resolve_cam_threshold(str(tmp_path), config)


@pytest.mark.slow
def test_heatmap_size_option(exported):
    e = exported["entries"]["cam"]
    fns = inference.InferenceModule(
        e["model"], e["config"], THRESHOLD, top_k=3, heatmap_size=20
    )
    out = fns.image_tensor(tf.constant(exported["tensor"]))
    assert out["heatmaps"].shape == (2, 20, 20) and out["classes"].shape == (2, 3)
    full = e["fresh"]["image_tensor/heatmaps"]
    want = tf.image.resize(full[..., None], [20, 20])[..., 0].numpy()
    np.testing.assert_allclose(out["heatmaps"].numpy(), np.clip(want, 0, 1), atol=1e-5)
    np.testing.assert_allclose(
        out["boxes"].numpy(), e["fresh"]["image_tensor/boxes"], atol=1e-5
    )


def _signature_inputs(path, name):
    loaded = tf.saved_model.load(path)
    sig = loaded.signatures[name]
    return loaded, sig, sig.structured_input_signature[1]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["image_bytes", "serving_default", "image_tensor"])
def test_grpc_predict_request_fits_signature(exported, name):
    e = exported["entries"]["cam"]
    loaded, sig, specs = _signature_inputs(e["path"], name)
    images = exported["tensor"] if name == "image_tensor" else exported["encoded"]
    request = client.build_grpc_request(images, "cam", signature_name=name, version=1)
    assert (
        request.model_spec.name == "cam" and request.model_spec.signature_name == name
    )
    assert request.model_spec.version.value == 1
    assert set(request.inputs) == set(specs)
    for key, spec in specs.items():
        proto = request.inputs[key]
        assert proto.dtype == spec.dtype.as_datatype_enum
        shape = tf.TensorShape([d.size for d in proto.tensor_shape.dim])
        assert spec.shape.is_compatible_with(shape)
        out = sig(**{key: tf.constant(tf.make_ndarray(proto))})
    memory_name = "image_tensor" if name == "image_tensor" else "image_bytes"
    for k in inference.OUTPUT_KEYS:
        np.testing.assert_allclose(
            out[k].numpy(), e["memory"][f"{memory_name}/{k}"], atol=1e-5
        )


@pytest.mark.slow
def test_rest_body_round_trips(exported):
    e = exported["entries"]["cam"]
    loaded, sig, specs = _signature_inputs(e["path"], "image_bytes")
    body = json.loads(json.dumps(client.build_rest_body(exported["encoded"])))
    assert body["signature_name"] == "image_bytes"
    decoded = [base64.b64decode(row["b64"]) for row in body["instances"]]
    assert decoded == exported["encoded"]
    out = sig(images=tf.constant(decoded))
    np.testing.assert_allclose(
        out["boxes"].numpy(), e["memory"]["image_bytes/boxes"], atol=1e-5
    )
    body = client.build_rest_body(exported["tensor"], "image_tensor")
    np.testing.assert_array_equal(
        np.asarray(body["instances"], np.uint8), exported["tensor"]
    )
    assert (
        client.rest_url("h", 8501, "cam", 3)
        == "http://h:8501/v1/models/cam/versions/3:predict"
    )
    with pytest.raises(ValueError, match="uint8"):
        client.build_rest_body(exported["tensor"].astype(np.float32), "image_tensor")
    with pytest.raises(TypeError, match="bytes"):
        client.build_rest_body(["not bytes"], "image_bytes")
    with pytest.raises(ValueError, match="unknown signature"):
        client.build_rest_body(exported["encoded"], "nope")


def test_models_config_names_an_exported_layout():
    text = open(os.path.join(ROOT, "export", "serving", "models.config")).read()
    assert 'model_platform: "tensorflow"' in text
    name = text.split('name: "')[1].split('"')[0]
    base_path = text.split('base_path: "')[1].split('"')[0]
    assert base_path.endswith("/" + name)


@pytest.mark.slow
def test_wsol_export_program(tmp_path):
    wd = make_workdir(str(tmp_path / "wd"), "cam", metrics={"cam_threshold": 0.45})
    out = tmp_path / "models"
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "export", "export_saved_model.py"),
            f"--workdir={wd}",
            f"--output={out}",
            "--model_name=birds",
            "--top_k=2",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    card = saved_model_lib.read_model_card(str(out / "birds" / "1"))
    assert card["top_k"] == 2
    assert card["cam_threshold_source"] == "val search (eval/test-cam/metrics.json)"
    assert card["cam_threshold"] == 0.45
    assert card["test_metrics"]["split"] == "test"
    proc = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "export", "export_saved_model.py"),
            f"--workdir={tmp_path / 'missing'}",
            f"--output={out}",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode != 0 and "config.json" in proc.stderr


def test_in_memory_errors_are_clear():
    keras.utils.set_random_seed(0)
    config = make_config("cam")
    model = trainer.build_compiled_model(config, DATA_INFO)
    fns = inference.InferenceModule(model, config, THRESHOLD, top_k=20)
    _, encoded, _ = make_inputs()
    with pytest.raises(tf.errors.InvalidArgumentError, match="is not an encoded JPEG"):
        fns.image_bytes(tf.constant([encoded[0], b"GIF? no, plain text"]))
    out = fns.image_bytes(tf.constant(encoded[:1]))
    assert out["classes"].shape == (1, 8)  # top_k capped at the 8 classes
    with pytest.raises(ValueError, match="cam_threshold"):
        inference.InferenceModule(model, config, 1.5)
    with pytest.raises(ValueError, match="top_k"):
        inference.InferenceModule(model, config, THRESHOLD, top_k=0)
    with config.unlocked():
        config.eval.map_method = "saliency"
    with pytest.raises(ValueError, match="saliency"):
        inference.InferenceModule(model, config, THRESHOLD)
    with config.unlocked():
        config.eval.map_method = "dgl"
        config.eval.dgl_layer = ""
    with pytest.raises(ValueError, match="dgl_layer"):
        inference.InferenceModule(model, config, THRESHOLD)
