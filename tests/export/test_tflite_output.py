"""wsol-export-tflite never overwrites another model's files in --output nor drops
its manifest's variants: refused naming the files, unless --overwrite."""

import json
import os

import keras
import pytest

from wsol_keras.configs import base as config_base
from wsol_keras.export import tflite_lib
from wsol_keras.export import tflite_output
from wsol_keras.models import registry
from wsol_keras.training import trainer
from wsol_keras.training import workdir as workdir_lib

S = 32
INFO = {"num_classes": 4, "class_names": list("abcd"), "hierarchy_sizes": [2, 1], "image_size": S}


def _manifest(name="cam_x", threshold=0.3, variants=()):
    return {"model_name": name, "cam_threshold": threshold,
            "variants": {v: {"file": f"{name}_{v}.tflite"} for v in variants}}


def _put(folder, manifest):
    for info in manifest["variants"].values():
        (folder / info["file"]).write_bytes(b"model")
    (folder / tflite_output.MANIFEST_FILE).write_text(json.dumps(manifest))


def test_same_model_keeps_its_other_variants(tmp_path):
    _put(tmp_path, _manifest(variants=("float32", "int8")))
    kept, stale = tflite_output.plan(tmp_path, _manifest(), {"float16": "cam_x_float16.tflite", "int8": "cam_x_int8.tflite"})
    assert sorted(kept) == ["float32"] and stale == []


def test_another_model_is_refused_naming_the_files(tmp_path):
    _put(tmp_path, _manifest(variants=("float32", "int8")))
    new = _manifest(threshold=0.5)  # same name, another model
    with pytest.raises(FileExistsError, match=r"cam_x_float32.tflite, cam_x_int8.tflite, tflite_manifest.json: they belong to another model"):
        tflite_output.plan(tmp_path, new, {"float32": "cam_x_float32.tflite"})
    kept, stale = tflite_output.plan(tmp_path, new, {"float32": "cam_x_float32.tflite"}, overwrite=True)
    assert kept == {} and stale == ["cam_x_int8.tflite"]


def test_unlisted_or_unreadable_is_refused(tmp_path):
    (tmp_path / "cam_x_float32.tflite").write_bytes(b"someone's")
    with pytest.raises(FileExistsError, match="no tflite_manifest.json of this model lists them"):
        tflite_output.plan(tmp_path, _manifest(), {"float32": "cam_x_float32.tflite"})
    (tmp_path / tflite_output.MANIFEST_FILE).write_text("{not json")
    with pytest.raises(FileExistsError, match="cannot be read"):
        tflite_output.plan(tmp_path, _manifest(), {"float16": "cam_x_float16.tflite"})


def _workdir(path, seed):
    keras.utils.set_random_seed(seed)
    config = config_base.make_smoke(config_base.base_config())
    config.method = registry.default_method_config("cam")
    config.data.image_size = S
    model = trainer.build_compiled_model(config, INFO)
    workdir_lib.write_config(path, config, INFO)
    workdir_lib.save_weights_atomic(model, workdir_lib.final_weights_path(path))
    workdir_lib.write_json_atomic(os.path.join(path, "metrics.json"), {"cam_threshold": 0.25})
    return path


def test_export_of_a_second_model_into_the_same_output(tmp_path):
    out = str(tmp_path / "lite")
    a, b = _workdir(str(tmp_path / "a"), 0), _workdir(str(tmp_path / "b"), 1)
    tflite_lib.export_tflite(a, out, variants=("float32", "dynamic_int8"), postprocess="none")
    before = {n: open(os.path.join(out, n), "rb").read() for n in os.listdir(out)}
    with pytest.raises(FileExistsError, match="cam_small_cnn_dynamic_int8.tflite, cam_small_cnn_float32.tflite"):
        tflite_lib.export_tflite(b, out, variants=("float32",), postprocess="none")
    assert {n: open(os.path.join(out, n), "rb").read() for n in os.listdir(out)} == before
    # The same model adds a variant and keeps the others.
    manifest = tflite_lib.export_tflite(a, out, variants=("float16",), postprocess="none")
    assert sorted(manifest["variants"]) == ["dynamic_int8", "float16", "float32"]
    # --overwrite: the other model's files go; folder and manifest agree.
    manifest = tflite_lib.export_tflite(b, out, variants=("float32",), postprocess="none", overwrite=True)
    assert sorted(os.listdir(out)) == ["cam_small_cnn_float32.tflite", tflite_output.MANIFEST_FILE]
    assert sorted(manifest["variants"]) == ["float32"]
