"""Evaluation records: wsol-eval never overwrites the training report, and
exports take the threshold of the record of the map (and weights) they export.

Issue cases (training issue item 4; hostile-input issue "Data lost"):
    * `wsol-eval` with another split / map method / layer used to overwrite
      metrics.json, heatmaps.png and box_accuracy.png;
    * a DGL export carried CAM's threshold and its model card paired
      ``map_method: dgl`` with ``test_metrics.map_method: cam``; the TFLite
      manifest carried another map's threshold;
    * a scratch ``--split=train --max_images=20`` run changed the served
      threshold and the model card;
    * no record: the export must stop and name the `wsol-eval` command.
The workdirs are real (32 px synthetic data, random weights); `wsol-eval` runs
as the CLI in a subprocess.
"""

import hashlib
import json
import os
import subprocess
import sys

import keras
import pytest

from wsol_keras import data as data_lib
from wsol_keras.evaluation import records as eval_records
from wsol_keras.evaluation import evaluator
from wsol_keras.training import trainer
from wsol_keras.training import workdir as workdir_lib
from wsol_keras.configs import base as config_base
from wsol_keras.export import saved_model_lib
from wsol_keras.export import tflite_lib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
S = 32
LAYER = "backbone/small_cnn_features/stage3_relu1"
REPORT_FILES = ("metrics.json", "heatmaps.png", "box_accuracy.png")
# A scratch run's fixed threshold: a served threshold taken from the wrong
# record shows as this value.
SCRATCH_THRESHOLD = 0.77


def make_workdir(path, map_method="cam"):
    """config.json + model.weights.h5 (random weights) + the training report."""
    config = config_base.make_smoke(config_base.base_config())
    config.data.image_size = S
    config.data.synthetic.num_val = 24
    config.eval.max_images = None
    config.eval.num_visualize = 2
    if map_method == "dgl":
        config.eval.map_method = "dgl"
        config.eval.dgl_layer = LAYER
    source = data_lib.get_source(config.data)
    info = trainer.data_info_of(source, config)
    keras.utils.set_random_seed(0)
    model = trainer.build_compiled_model(config, info)
    workdir_lib.write_config(path, config, info)
    workdir_lib.save_weights_atomic(model, workdir_lib.final_weights_path(path))
    evaluator.evaluate_and_report(model, source, config, path)  # wsol-train's report
    return path, config


def snapshot(path):
    return {
        name: open(os.path.join(path, name), "rb").read() for name in REPORT_FILES
    }


def wsol_eval(workdir, *args):
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run(
        [sys.executable, "-m", "wsol_keras.evaluation.evaluator", f"--workdir={workdir}", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@pytest.fixture(scope="module")
def cam_run(tmp_path_factory):
    """A CAM workdir after wsol-trainer, then two scratch wsol-eval runs."""
    wd, config = make_workdir(str(tmp_path_factory.mktemp("cam") / "run"))
    before = snapshot(wd)
    with open(os.path.join(wd, "metrics.json")) as f:
        report = json.load(f)
    wsol_eval(wd, "--split=train", "--max_images=20")
    wsol_eval(
        wd,
        "--split=val",
        "--map_method=gradcam",
        f"--dgl_layer={LAYER}",
        f"--cam_threshold={SCRATCH_THRESHOLD}",
    )
    return {"wd": wd, "config": config, "before": before, "report": report}


@pytest.mark.slow
def test_eval_never_overwrites_the_training_report(cam_run):
    wd = cam_run["wd"]
    assert snapshot(wd) == cam_run["before"]
    records = {os.path.basename(os.path.dirname(p)): r for p, r in
               eval_records.list_records(wd)}
    assert sorted(records) == [
        "test-cam",
        "train-cam-max20",
        "val-gradcam-backbone_small_cnn_features_stage3_relu1-thr0.77",
    ]
    weights = sha256(workdir_lib.final_weights_path(wd))
    scratch = records["train-cam-max20"]
    assert scratch["split"] == "train" and scratch["map_method"] == "cam"
    assert scratch["layer"] is None and scratch["max_images"] == 20
    assert scratch["num_images"] == 20 and scratch["weights_sha256"] == weights
    # 20 of the 24 val images searched (the limit applies to the search too).
    assert scratch["cam_threshold_source"] == "val search"
    assert scratch["threshold_split"] == "val"
    assert scratch["threshold_search_images"] == 20
    grad = records["val-gradcam-backbone_small_cnn_features_stage3_relu1-thr0.77"]
    assert grad["layer"] == LAYER and grad["map_method"] == "gradcam"
    assert grad["cam_threshold"] == SCRATCH_THRESHOLD
    assert grad["cam_threshold_source"] == "fixed"
    assert grad["num_images"] == 24 and grad["num_images_with_boxes"] == 24
    full = records["test-cam"]
    assert full == cam_run["report"]  # the training report is also a record
    assert full["num_images"] == 16 and full["weights_sha256"] == weights
    for name in ("heatmaps.png", "box_accuracy.png"):
        assert os.path.exists(os.path.join(wd, "eval", "train-cam-max20", name))


@pytest.mark.slow
def test_scratch_evals_change_neither_served_threshold_nor_card(cam_run, tmp_path):
    wd, report = cam_run["wd"], cam_run["report"]
    path = saved_model_lib.export_saved_model(wd, str(tmp_path / "m"))
    card = saved_model_lib.read_model_card(path)
    assert card["cam_threshold"] == report["cam_threshold"]
    assert card["cam_threshold_source"] == "val search (eval/test-cam/metrics.json)"
    assert card["map_method"] == card["test_metrics"]["map_method"] == "cam"
    assert card["test_metrics"]["split"] == "test"
    assert card["test_metrics"]["num_images"] == 16
    assert card["eval_record"]["weights_sha256"] == sha256(
        workdir_lib.final_weights_path(wd)
    )
    manifest = tflite_lib.export_tflite(
        wd, str(tmp_path / "lite"), variants=("float32",), postprocess="none"
    )
    assert manifest["cam_threshold"] == report["cam_threshold"]
    assert manifest["cam_threshold_map_method"] == manifest["map_method"] == "cam"


@pytest.mark.slow
def test_dgl_export_takes_the_dgl_threshold(tmp_path):
    wd, _ = make_workdir(str(tmp_path / "run"), map_method="dgl")
    with open(os.path.join(wd, "metrics.json")) as f:
        dgl_threshold = json.load(f)["cam_threshold"]
    wsol_eval(wd, "--map_method=cam", f"--cam_threshold={SCRATCH_THRESHOLD}")
    path = saved_model_lib.export_saved_model(wd, str(tmp_path / "m"))
    card = saved_model_lib.read_model_card(path)
    assert card["map_method"] == "dgl"
    assert card["cam_threshold"] == dgl_threshold
    assert card["test_metrics"]["map_method"] == "dgl"
    assert card["test_metrics"]["layer"] == LAYER


def _bare_workdir(path, map_method="dgl"):
    config = config_base.make_smoke(config_base.base_config())
    config.data.image_size = S
    if map_method == "dgl":
        config.eval.map_method = "dgl"
        config.eval.dgl_layer = LAYER
    info = {"num_classes": 4, "class_names": list("abcd"), "image_size": S,
            "hierarchy_sizes": [2, 1]}
    workdir_lib.write_config(path, config, info)
    with open(workdir_lib.final_weights_path(path), "wb") as f:
        f.write(b"weights v1")
    return config


def test_export_without_record_names_the_eval_command(tmp_path):
    wd = str(tmp_path / "run")
    _bare_workdir(wd)
    command = (
        f"wsol-eval --workdir={wd} --split=test --map_method=dgl "
        f"--dgl_layer={LAYER}"
    )
    with pytest.raises(LookupError) as e:
        saved_model_lib.export_saved_model(wd, str(tmp_path / "m"))
    assert command in str(e.value) and "no evaluation records" in str(e.value)
    # A record of other weights (retrained since) does not count either.
    record = {
        "split": "test", "map_method": "dgl", "layer": LAYER, "topk": None,
        "max_images": 16, "cam_threshold": 0.3,
        "cam_threshold_source": "val search",
        "weights_sha256": hashlib.sha256(b"weights v0").hexdigest(),
    }
    workdir_lib.write_json_atomic(
        os.path.join(wd, "eval", "test-dgl", "metrics.json"), record
    )
    with pytest.raises(LookupError, match="weights_sha256") as e:
        tflite_lib.export_tflite(wd, str(tmp_path / "lite"), variants=("float32",))
    assert command in str(e.value)
    record["weights_sha256"] = hashlib.sha256(b"weights v1").hexdigest()
    workdir_lib.write_json_atomic(
        os.path.join(wd, "eval", "test-dgl", "metrics.json"), record
    )
    path, found = eval_records.find_export_record(
        wd, workdir_lib.read_config(wd)[0], record["weights_sha256"]
    )
    assert found == record and path.endswith("eval/test-dgl/metrics.json")


def test_legacy_metrics_json_is_read_for_its_own_map_method(tmp_path):
    """Workdirs from before the records: metrics.json without a weights hash."""
    wd = str(tmp_path / "run")
    config = _bare_workdir(wd, map_method="cam")
    digest = hashlib.sha256(b"weights v1").hexdigest()
    workdir_lib.write_json_atomic(
        os.path.join(wd, "metrics.json"), {"cam_threshold": 0.27, "map_method": "cam"}
    )
    path, record = eval_records.find_export_record(wd, config, digest)
    assert record["cam_threshold"] == 0.27 and path == os.path.join(wd, "metrics.json")
    assert eval_records.threshold_source_label(path, record, wd) == (
        eval_records.LEGACY_SOURCE
    )
    workdir_lib.write_json_atomic(
        os.path.join(wd, "metrics.json"), {"cam_threshold": 0.27, "map_method": "dgl"}
    )
    with pytest.raises(LookupError, match="legacy"):
        eval_records.find_export_record(wd, config, digest)


def test_unwritable_workdir_fails_before_evaluating(tmp_path, monkeypatch):
    """Root ignores chmod: an 'eval' file where the folder goes blocks writing."""
    wd = str(tmp_path / "run")
    config = _bare_workdir(wd, map_method="cam")
    (tmp_path / "run" / "eval").write_text("not a folder")
    calls = []
    monkeypatch.setattr(evaluator, "evaluate_model", lambda *a, **k: calls.append(a))
    with pytest.raises(PermissionError, match=r"eval/test-cam: cannot write"):
        evaluator.evaluate_and_record(None, None, config, wd)
    assert not calls  # refused before the (long) evaluation


def test_metrics_are_shown_before_writing(tmp_path, monkeypatch):
    wd = str(tmp_path / "run")
    config = _bare_workdir(wd, map_method="cam")
    metrics = {"top1_cls": 12.5, "cam_threshold": 0.25, "num_images": 8,
               "num_images_with_boxes": 6, "cam_threshold_source": "val search",
               "_curves": {}, "_thresholds": [0.0]}
    monkeypatch.setattr(evaluator, "evaluate_model", lambda *a, **k: dict(metrics))

    class Source:
        class_names = ["a"]

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr(workdir_lib, "write_json_atomic", fail)
    shown = []
    with pytest.raises(OSError, match="disk full"):
        evaluator.evaluate_and_record(None, Source(), config, wd, show=shown.append)
    assert len(shown) == 1 and "12.50" in shown[0]
    assert "8 images, 6 with boxes" in shown[0]


def test_export_refuses_a_threshold_searched_on_original_size_or_crop_averaged_maps(
    tmp_path,
):
    """Exports localize at S x S from one image: a threshold chosen on maps
    resized to each original image (eval.image_size_mode="original") or, for
    DGL, on maps averaged over ten crops is another protocol's threshold."""
    wd = str(tmp_path / "run")
    _bare_workdir(wd)  # map_method dgl
    digest = hashlib.sha256(b"weights v1").hexdigest()
    record = {
        "split": "test", "map_method": "dgl", "layer": LAYER, "topk": None,
        "max_images": 16, "cam_threshold": 0.3,
        "cam_threshold_source": "val search", "weights_sha256": digest,
        "image_size_mode": "original", "ten_crop": False,
    }
    folder = os.path.join(wd, "eval", "test-dgl-original", "metrics.json")
    workdir_lib.write_json_atomic(folder, record)
    config = workdir_lib.read_config(wd)[0]
    with pytest.raises(LookupError, match="image_size_mode='original'"):
        eval_records.find_export_record(wd, config, digest)
    # A paper config evaluates at the original size: the command an export
    # names then asks for the fixed-size, single-image record.
    with config.unlocked():
        config.eval.image_size_mode = "original"
    with pytest.raises(LookupError) as e:
        eval_records.find_export_record(wd, config, digest)
    assert "--image_size_mode=fixed --ten_crop=false" in str(e.value)
    with config.unlocked():
        config.eval.image_size_mode = "fixed"
    record.update(image_size_mode="fixed", ten_crop=True)
    workdir_lib.write_json_atomic(folder, record)
    with pytest.raises(LookupError, match="ten_crop=True"):
        eval_records.find_export_record(wd, config, digest)
    record.update(ten_crop=False)
    workdir_lib.write_json_atomic(folder, record)
    path, found = eval_records.find_export_record(wd, config, digest)
    assert found["cam_threshold"] == 0.3


def test_scorecam_records_name_their_channel_cap():
    # Score-CAM maps of N=8 and N=32 channels are different maps: separate
    # folders, and an export with N=32 does not take the N=8 threshold.
    config = config_base.base_config()
    config.eval.map_method = "scorecam"
    config.eval.dgl_layer = "backbone/x"
    config.eval.scorecam_channels = 8
    assert eval_records.record_key("val", config) == "val-scorecam-backbone_x-n8"
    record = {"map_method": "scorecam", "layer": "backbone/x", "topk": None,
              "scorecam_channels": 8, "weights_sha256": "h", "split": "val"}
    assert eval_records._mismatch(record, config, "h") is None
    config.eval.scorecam_channels = 32
    assert "scorecam_channels=8" in eval_records._mismatch(record, config, "h")
    assert "--scorecam_channels=32" in eval_records.eval_command("W", config)
    config.eval.map_method = "gradcam++"  # its own folder, not Grad-CAM's
    assert eval_records.record_key("val", config) == "val-gradcampp-backbone_x"
