"""A diverged run (non-finite loss or weights) stops with a clear error, exits
non-zero, writes no report or final weights, and keeps its last good checkpoint."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from file_modules import load_module
from wsol_keras.training import divergence
from wsol_keras.training import trainer
from wsol_keras.training import workdir as workdir_lib

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _config(**train):
    path = os.path.join(REPO, "configs", "synthetic_cam.py")
    config = load_module("synthetic_cam", path).get_config("smoke")
    config.train.val_localization_every = 0
    for k, v in train.items():
        config.train[k] = v
    return config


def _tiny_model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    return model


def test_guard_names_epoch_and_step_of_a_nan_loss():
    guard = divergence.DivergenceGuard(last_good_epoch=3)
    guard.set_model(_tiny_model())
    guard.on_epoch_begin(4)
    guard.on_train_batch_end(0, {"loss": 1.0, "accuracy": float("nan")})  # not a loss
    with pytest.raises(divergence.TrainingDiverged, match=r"epoch 5, step 7: ce_loss = inf.*epoch 3 is kept"):
        guard.on_train_batch_end(6, {"ce_loss": float("inf")})


def test_guard_checks_weights_at_epoch_end():
    model = _tiny_model()
    guard = divergence.DivergenceGuard()
    guard.set_model(model)
    guard.on_epoch_begin(0)
    guard.on_epoch_end(0)  # finite: passes
    kernel = model.layers[0].kernel
    kernel.assign(np.array([[1, np.nan], [0, 0], [0, 0]], "float32"))
    with pytest.raises(divergence.TrainingDiverged, match=r"epoch 1 \(end\).*1 non-finite value\(s\) of 6"):
        guard.on_epoch_end(0)
    with pytest.raises(divergence.TrainingDiverged, match="after precise BN"):
        divergence.check_finite_weights(model, "after precise BN")


def test_cli_diverged_run_exits_nonzero_and_writes_no_report(tmp_path):
    wd = str(tmp_path / "run")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CI="1")
    proc = subprocess.run(
        [sys.executable, "-m", "wsol_keras.training.trainer",
         "--config=configs/synthetic_cam.py:smoke", "--config.train.optimizer=sgd",
         "--config.train.learning_rate=1e30", f"--workdir={wd}"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode != 0, proc.stdout[-2000:]
    assert "training diverged at epoch 1" in proc.stderr, proc.stderr[-2000:]
    for name in ("metrics.json", "model.weights.h5", "selected_checkpoint.json"):
        assert not os.path.exists(os.path.join(wd, name)), name
    assert not os.path.exists(os.path.join(wd, "checkpoints", "last.json"))


def test_divergence_keeps_the_last_good_checkpoint_resumable(tmp_path):
    wd = str(tmp_path / "run")
    trainer.train(_config(), wd)
    with open(os.path.join(wd, "checkpoints", "last.json")) as f:
        good = json.load(f)
    final = open(workdir_lib.final_weights_path(wd), "rb").read()
    bad = _config(epochs=2, optimizer="sgd", learning_rate=1e30)
    with pytest.raises(divergence.TrainingDiverged, match="epoch 2.*epoch 1 is kept"):
        trainer.train(bad, wd, allow_config_change=True)
    with open(os.path.join(wd, "checkpoints", "last.json")) as f:
        assert json.load(f) == good
    # The previous final weights are not replaced by NaN ones.
    assert open(workdir_lib.final_weights_path(wd), "rb").read() == final
    # A sane rerun resumes from epoch 1 and finishes epoch 2 with finite weights.
    model, _, _ = trainer.train(_config(epochs=2), wd, allow_config_change=True)
    divergence.check_finite_weights(model, "after the resumed run")
    with open(os.path.join(wd, "checkpoints", "last.json")) as f:
        assert json.load(f)["epochs_done"] == 2
