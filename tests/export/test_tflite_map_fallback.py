"""The default experiment's TFLite flow: a workdir whose map is DGL (CAM
training, gradient maps) exports TFLite files that carry the CAM map, and the
manifest, the CLI lines and `postprocess` agree on which map ships."""

import json
import os

import keras
import numpy as np
import pytest

from wsol_keras.configs import base as config_base
from wsol_keras.evaluation import records
from wsol_keras.export import tflite_lib
from wsol_keras.models import registry
from wsol_keras.training import trainer
from wsol_keras.training import workdir as workdir_lib

S = 32
DATA_INFO = {
    "num_classes": 4,
    "class_names": ["a", "b", "c", "d"],
    "hierarchy_sizes": [2, 1],
    "image_size": S,
}


def _record(wd, config, threshold):
    """An evaluation record of `config`'s map, as wsol-eval writes it."""
    weights = workdir_lib.final_weights_path(wd)
    digest = records.weights_sha256(weights)
    record = records.provenance("test", config, None, digest, weights)
    record.update(cam_threshold=threshold, cam_threshold_source=records.VAL_SEARCH)
    folder = records.record_dir(wd, record["record_key"])
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, records.RECORD_FILE), "w") as f:
        json.dump(record, f)


def _dgl_workdir(tmp_path, with_cam_record):
    keras.utils.set_random_seed(0)
    config = config_base.make_smoke(config_base.base_config())
    config.method = registry.default_method_config("cam")
    config.data.image_size = S
    config.eval.map_method = "dgl"  # as configs/synthetic_dgl.py
    config.eval.dgl_layer = "backbone/small_cnn_features/stage3_relu1"
    model = trainer.build_compiled_model(config, DATA_INFO)
    wd = str(tmp_path / "wd")
    workdir_lib.write_config(wd, config, DATA_INFO)
    workdir_lib.save_weights_atomic(model, workdir_lib.final_weights_path(wd))
    _record(wd, config, 0.4)
    if with_cam_record:
        cam = tflite_lib._with_map(config, "cam")
        _record(wd, cam, 0.25)
    return wd, model


@pytest.mark.slow  # three TFLite conversions
def test_dgl_workdir_ships_cam_and_says_so(tmp_path):
    wd, model = _dgl_workdir(tmp_path, with_cam_record=True)
    out = str(tmp_path / "lite")
    manifest = tflite_lib.export_tflite(wd, out, variants=("float32",), postprocess="heatmap")
    assert manifest["config_map_method"] == "dgl"
    assert manifest["map_method"] == "cam" and manifest["cam_threshold"] == 0.25
    assert "does not convert" in manifest["map_fallback"]
    assert "CAM" in manifest["heatmap"]
    info = manifest["variants"]["float32"]
    assert "heatmap" in info["outputs"]
    assert "map: cam" in tflite_lib.describe_variant(info)
    # The README's LiteRT snippet, on this export.
    runner = tflite_lib.LiteRTModel(os.path.join(out, info["file"]))
    image = np.random.default_rng(0).uniform(0, 255, (1, S, S, 3)).astype(np.float32)
    outputs = runner(image)
    heatmap, box = tflite_lib.postprocess(
        outputs, S, manifest["cam_threshold"], manifest["map_method"]
    )
    # The CAM map of the predicted class, computed from the Keras model's cams
    # independently of the exporter: class map, min-max normalised after
    # upsampling is the evaluator's path; compare the class and the ranking.
    keras_out = model(image, training=False)
    top1 = int(np.argmax(keras_out["logits"][0]))
    assert top1 == int(np.argmax(outputs["logits"][0]))
    cam = np.asarray(keras_out["cams"])[0, :, :, top1]
    small = heatmap.reshape(cam.shape[0], S // cam.shape[0], cam.shape[1], -1).mean((1, 3))
    assert np.corrcoef(small.ravel(), cam.ravel())[0, 1] > 0.9
    assert heatmap.shape == (S, S) and box.shape == (4,)


@pytest.mark.slow
def test_dgl_workdir_without_cam_record_names_the_eval_command(tmp_path):
    wd, _ = _dgl_workdir(tmp_path, with_cam_record=False)
    with pytest.raises(LookupError) as info:
        tflite_lib.export_tflite(wd, str(tmp_path / "lite"), variants=("float32",),
                                 postprocess="heatmap")
    message = str(info.value)
    assert "dgl map does not convert to TFLite" in message
    assert f"wsol-eval --workdir={wd} --split=test --map_method=cam" in message


def test_no_heatmap_is_never_described_as_computed_on_the_host():
    line = tflite_lib.describe_variant(
        {"postprocess_in_graph": "none", "file": "m.tflite", "bytes": 2048,
         "input_dtype": "float32", "outputs": ["cams", "logits"], "map_method": "dgl"}
    )
    assert "heat map and box" not in line and "no heat map" in line
