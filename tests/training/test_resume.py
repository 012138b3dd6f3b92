"""Exact resume: a training run killed with SIGKILL after epoch k, rerun on the
same workdir, ends where an uninterrupted run of the same seed ends, with the
same val localization scores and best epoch (see test_val_localization for
the best weights across a resume)."""

import csv
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from wsol_keras.training import trainer
from wsol_keras.training import workdir as workdir_lib
from wsol_keras.configs import synthetic_cam

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EPOCHS = 4
KILL_AFTER = 2  # epochs finished when the run is killed

# The killed run: the smoke config for EPOCHS epochs, which stops (sleeps) at
# the start of epoch KILL_AFTER, after every callback of the previous epoch ran,
# and says so with a marker file; the test then kills it with SIGKILL.
_KILLED_RUN = """
import sys, time
import keras
from wsol_keras.training import trainer
from wsol_keras.configs import synthetic_cam

workdir, marker, epochs, stop_at = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
config = synthetic_cam.get_config("smoke")
config.train.epochs = epochs
begin = keras.callbacks.CallbackList.on_epoch_begin

def on_epoch_begin(self, epoch, logs=None):
    if epoch == stop_at:
        open(marker, "w").close()
        time.sleep(600)
    return begin(self, epoch, logs)

keras.callbacks.CallbackList.on_epoch_begin = on_epoch_begin
trainer.train(config, workdir)
"""


def _config():
    config = synthetic_cam.get_config("smoke")
    config.train.epochs = EPOCHS
    return config


def _history(workdir):
    with open(os.path.join(workdir, "history.csv")) as f:
        return list(csv.DictReader(f))


def _kill_after_epochs(workdir, marker, k):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CI="1")
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED_RUN, workdir, marker, str(EPOCHS), str(k)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.time() + 240
        while not os.path.exists(marker):
            if proc.poll() is not None:
                raise AssertionError(
                    f"training exited ({proc.returncode}) before epoch {k}: "
                    + proc.stderr.read().decode()[-3000:]
                )
            assert time.time() < deadline, "no epoch-%d marker in 240 s" % k
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.slow
def test_sigkilled_run_resumes_exactly(tmp_path):
    killed = str(tmp_path / "killed")
    _kill_after_epochs(killed, str(tmp_path / "paused"), KILL_AFTER)
    assert len(_history(killed)) == KILL_AFTER
    assert not os.path.exists(os.path.join(killed, "model.weights.h5"))

    resumed, _, _ = trainer.train(_config(), killed)
    whole, _, _ = trainer.train(_config(), str(tmp_path / "whole"))

    steps = _config().train.steps_per_epoch
    assert int(whole.optimizer.iterations.numpy()) == EPOCHS * steps
    assert int(resumed.optimizer.iterations.numpy()) == EPOCHS * steps

    h_resumed, h_whole = _history(killed), _history(str(tmp_path / "whole"))
    assert [int(r["epoch"]) for r in h_resumed] == list(range(EPOCHS))
    lr_resumed = [float(r["learning_rate"]) for r in h_resumed]
    lr_whole = [float(r["learning_rate"]) for r in h_whole]
    # The cosine schedule (no warmup) at the last step of epoch e.
    lr0, total = _config().train.learning_rate, EPOCHS * steps
    expected = [
        lr0 * 0.5 * (1 + np.cos(np.pi * ((e + 1) * steps - 1) / total)) for e in range(EPOCHS)
    ]
    np.testing.assert_allclose(lr_whole, expected, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(lr_resumed, expected, rtol=1e-5, atol=1e-9)

    # Val scores of epochs 0..EPOCHS: the killed run's survive the resume.
    s_resumed, s_whole = (
        workdir_lib.checkpoint_record(w)["val_localization"]
        for w in (killed, str(tmp_path / "whole"))
    )
    assert sorted(s_resumed["scores"], key=int) == [str(e) for e in range(EPOCHS + 1)]
    assert s_resumed["scores"].keys() == s_whole["scores"].keys()
    for e, score in s_whole["scores"].items():
        assert s_resumed["scores"][e] == pytest.approx(score, abs=1e-6), e
    assert s_resumed["best_epoch"] == s_whole["best_epoch"]
    for a, b in zip(resumed.weights, whole.weights):
        np.testing.assert_allclose(
            np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5, err_msg=a.path
        )
    for a, b in zip(resumed.optimizer.variables, whole.optimizer.variables):
        np.testing.assert_allclose(
            np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6, err_msg=a.path
        )
