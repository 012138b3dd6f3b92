"""One writer per workdir: a second process is refused naming the holder; a
dead holder's lock is taken over; the lock is re-entrant and leaves nothing."""

import json
import os
import subprocess
import sys
import time

import pytest

from file_modules import load_module
from wsol_keras.training import trainer
from wsol_keras.training import workdir_lock

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_HOLD = """
import sys, time
from wsol_keras.training import workdir_lock
with workdir_lock.directory_lock(sys.argv[1], "holder-tool"):
    print("locked", flush=True)
    time.sleep(60)
"""


@pytest.fixture
def holder(tmp_path):
    """A process holding tmp_path/run's lock; yields (directory, pid)."""
    directory = str(tmp_path / "run")
    env = dict(os.environ, PYTHONPATH=REPO)
    proc = subprocess.Popen([sys.executable, "-c", _HOLD, directory], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout.readline().strip() == "locked"
        yield directory, proc.pid
    finally:
        proc.kill()
        proc.wait()


def test_second_process_is_refused_naming_the_holder(holder):
    directory, pid = holder
    with pytest.raises(workdir_lock.DirectoryLocked) as e:
        with workdir_lock.directory_lock(directory, "wsol-eval"):
            pass
    message = str(e.value)
    assert f"holder-tool (pid {pid} on host" in message and "started 20" in message, message


def test_train_is_refused_while_another_process_holds_the_workdir(holder):
    directory, pid = holder
    config = load_module("synthetic_cam", os.path.join(REPO, "configs", "synthetic_cam.py")).get_config("smoke")
    with pytest.raises(workdir_lock.DirectoryLocked, match=f"pid {pid}"):
        trainer.train(config, directory)
    assert os.listdir(directory) == [workdir_lock.LOCK_FILE]  # nothing of ours


def test_lock_of_a_killed_process_is_taken_over(tmp_path):
    directory = str(tmp_path / "run")
    env = dict(os.environ, PYTHONPATH=REPO)
    proc = subprocess.Popen([sys.executable, "-c", _HOLD, directory], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout.readline().strip() == "locked"
    proc.kill()  # SIGKILL: no cleanup; its lock file stays behind
    proc.wait()
    lock = os.path.join(directory, workdir_lock.LOCK_FILE)
    with open(lock) as f:
        assert json.load(f)["pid"] == proc.pid
    with workdir_lock.directory_lock(directory, "wsol-train"):
        with open(lock) as f:
            assert json.load(f)["pid"] == os.getpid()
    assert not os.path.exists(lock)


def test_reentrant_and_leaves_nothing(tmp_path):
    directory = str(tmp_path / "new" / "deeper")
    with workdir_lock.directory_lock(directory, "a"):
        with workdir_lock.directory_lock(directory + "/", "b"):  # same process
            pass
        assert os.path.exists(os.path.join(directory, workdir_lock.LOCK_FILE))
    assert os.listdir(tmp_path) == []  # created by the lock, left empty
    os.makedirs(directory)
    with workdir_lock.directory_lock(directory, "a"):
        open(os.path.join(directory, "x"), "w").close()
    assert os.listdir(directory) == ["x"]


def test_wsol_eval_is_refused_while_another_process_holds_the_workdir(holder):
    directory, pid = holder
    config = load_module("synthetic_cam", os.path.join(REPO, "configs", "synthetic_cam.py")).get_config("smoke")
    from wsol_keras.training import workdir as workdir_lib

    workdir_lib.write_config(directory, config, {"num_classes": 8, "class_names": list("abcdefgh")})
    proc = subprocess.run(
        [sys.executable, "-m", "wsol_keras.evaluation.evaluator", f"--workdir={directory}"],
        capture_output=True, text=True, cwd=REPO, timeout=120,
        env=dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    assert proc.returncode == 1
    assert f"is in use by holder-tool (pid {pid}" in proc.stderr, proc.stderr[-1500:]
