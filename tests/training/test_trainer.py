"""End to end: wsol-train on the smoke config, the report, resume, CLI flags, MirroredStrategy."""

import glob
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from file_modules import load_module
from wsol_keras.evaluation import evaluator
from wsol_keras.training import trainer
from wsol_keras.training import workdir as workdir_lib
from shared_dirs import smoke_cam_workdir
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_config(name, arg="smoke"):
    path = os.path.join(REPO, "configs", f"{name}.py")
    return load_module(name, path).get_config(arg)


def test_train_evaluate_report_and_resume(tmp_path):
    wd = str(tmp_path / "run")
    config = load_config("synthetic_cam")
    model, source, info = trainer.train(config, wd)
    assert info["num_classes"] == source.num_classes == len(info["class_names"])
    metrics = evaluator.evaluate_and_report(model, source, config, wd)
    for name in (
        "config.json",
        "model.weights.h5",
        "metrics.json",
        "heatmaps.png",
        "box_accuracy.png",
        "history.csv",
    ):
        assert os.path.exists(os.path.join(wd, name)), name
    with open(os.path.join(wd, "metrics.json")) as f:
        saved = json.load(f)
    keys = (
        "top1_cls",
        "top5_cls",
        "top1_loc",
        "top5_loc",
        "gt_known_loc",
        "max_box_acc",
        "max_box_acc_v2",
        "max_box_acc_v2_iou30",
        "max_box_acc_v2_iou50",
        "max_box_acc_v2_iou70",
        "pxap",
        "cam_threshold",
        "pointing_game",
        "corloc",
    )
    for k in keys:
        assert k in saved, k
        assert 0.0 <= saved[k] <= 100.0, (k, saved[k])
    # Localization implies classification: top-1 Loc <= both parts of it.
    assert saved["top1_loc"] <= min(saved["top1_cls"], saved["gt_known_loc"]) + 1e-9
    assert saved["top5_loc"] <= saved["top5_cls"] + 1e-9
    assert saved == pytest.approx(metrics)
    # Rerunning the same workdir resumes after the finished epochs: no training.
    with open(os.path.join(wd, "checkpoints", "last.json")) as f:
        assert json.load(f)["epochs_done"] == config.train.epochs
    reloaded, cfg, _ = workdir_lib.load_model(wd)
    import numpy as np

    x = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    np.testing.assert_allclose(model(x)["logits"], reloaded(x)["logits"], atol=1e-5)


def _run(args, timeout=300):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CI="1")
    return subprocess.run(
        [sys.executable, *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.slow
def test_cli_overrides_and_mirrored_strategy_on_two_cpus(tmp_path):
    wd = str(tmp_path / "mirrored")
    proc = _run(
        [
            "-m",
            "wsol_keras.training.trainer",
            "--config=configs/synthetic_cam.py:smoke",
            f"--workdir={wd}",
            "--strategy=mirrored",
            "--cpu_replicas=2",
            "--config.train.batch_size=4",
            "--config.eval.max_images=8",
        ]
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    config, _ = workdir_lib.read_config(wd)
    assert config.train.batch_size == 4  # the override reached the effective config
    assert "gt_known_loc" in proc.stdout
    with open(os.path.join(wd, "metrics.json")) as f:
        training_report = json.load(f)
    proc = _run(
        [
            "-m",
            "wsol_keras.evaluation.evaluator",
            f"--workdir={wd}",
            "--cam_threshold=0.3",
            "--max_images=8",
        ]
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    # The evaluation gets a record of its own; the training report stays (issue 9.4).
    records = glob.glob(os.path.join(wd, "eval", "*", "metrics.json"))
    fixed = [json.load(open(r)) for r in records]
    assert [r["cam_threshold"] for r in fixed if r["cam_threshold_source"] == "fixed"] == [
        pytest.approx(0.3)
    ]
    with open(os.path.join(wd, "metrics.json")) as f:
        assert json.load(f) == training_report


def test_cli_rejects_a_bad_override(tmp_path):
    proc = _run(
        [
            "-m",
            "wsol_keras.training.trainer",
            "--config=configs/synthetic_cam.py:smoke",
            f"--workdir={tmp_path}",
            "--config.train.no_such_field=3",
        ]
    )
    assert proc.returncode != 0
    assert "no_such_field" in proc.stderr


def _train_on_folder(tmp_path, data_overrides, labels_seen):
    config = load_config("synthetic_cam")
    with config.unlocked():
        config.data.update(data_overrides)
        config.data.image_size = 32
        config.train.batch_size = 2
        config.eval.batch_size = 2
    wd = str(tmp_path / "run")
    model, source, info = trainer.train(config, wd)
    metrics = evaluator.evaluate_and_report(model, source, config, wd)
    assert info["class_names"] == labels_seen
    assert model(np.zeros((1, 32, 32, 3), np.float32))["logits"].shape == (
        1,
        len(labels_seen),
    )
    assert metrics["num_images"] >= 1 and 0 <= metrics["gt_known_loc"] <= 100
    return metrics


def test_cub_folder_trains_and_evaluates_with_data_overrides_only(tmp_path):
    from data.test_data_cub import make_cub

    root = make_cub(str(tmp_path / "CUB"))
    metrics = _train_on_folder(
        tmp_path,
        {"name": "cub", "root": root},
        ["001.Black_footed_Albatross", "002.Laysan_Albatross", "003.Groove_billed_Ani"],
    )
    assert metrics["num_images"] == 1  # the corrupt test image was skipped, not fatal


def test_wsol_metadata_folder_trains_and_evaluates(tmp_path):
    from data.test_data_wsol_metadata import make_boxes_dataset

    root, meta = make_boxes_dataset(tmp_path)
    _train_on_folder(
        tmp_path,
        {"name": "wsol_metadata", "root": str(root), "metadata": str(meta)},
        ["class_0", "class_1", "class_2"],
    )


def test_rerun_with_another_config_is_refused_before_writing(tmp_path, tmp_path_factory):
    # A finished smoke run: a copy of the run's shared one (tests/shared_dirs.py).
    wd = smoke_cam_workdir(tmp_path_factory, tmp_path / "run")
    files = {
        n: open(os.path.join(wd, n), "rb").read()
        for n in ("config.json", "model.weights.h5", "history.csv")
    }
    changed = load_config("synthetic_cam")
    changed.train.learning_rate = 0.5
    changed.method.name = "acol"
    with pytest.raises(ValueError) as e:
        trainer.train(changed, wd)
    assert "config.train.learning_rate: 0.002 -> 0.5" in str(e.value)
    assert "config.method.name: 'cam' -> 'acol'" in str(e.value)
    for name, content in files.items():
        assert open(os.path.join(wd, name), "rb").read() == content, name
    # The explicit flag continues the finished run under the new learning rate
    # and keeps the old config beside the new one.
    lr_only = load_config("synthetic_cam")
    lr_only.train.learning_rate = 0.5
    trainer.train(lr_only, wd, allow_config_change=True)
    assert workdir_lib.read_config(wd)[0].train.learning_rate == 0.5
    assert any(f.startswith("config.previous-") for f in os.listdir(wd))


def test_failed_config_check_writes_nothing(tmp_path):
    config = load_config("synthetic_cam")
    config.train.batch_size = 64  # the smoke set has 32 training images
    wd = tmp_path / "run"
    with pytest.raises(ValueError, match="exceeds the 32 training images"):
        trainer.train(config, str(wd))
    assert not wd.exists() or os.listdir(wd) == []
