"""An override naming no config field: one line, the closest fields first, exit 1."""

import os
import subprocess
import sys

import pytest

from wsol_keras import cli
from wsol_keras.configs import base

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_suggestion_comes_first():
    message = cli.unknown_config_field(["x", "--config.train.epoch=3"], base.base_config())
    assert message.startswith("did you mean --config.train.epochs? "), message
    assert cli.unknown_config_field(["x", "--config.train.epochs=3"], base.base_config()) is None


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--config=configs/synthetic_cam.py:smoke", "--config.method.num_classes=3"],
         "wsol-train: error: did you mean --config.method.name? --config.method.num_classes:"),
        (["--config.train.epoch=3"], "wsol-train: error: did you mean --config.train.epochs? "),
    ],
)
def test_cli_unknown_field_is_one_line(tmp_path, args, expected):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(
        [sys.executable, "-m", "wsol_keras.training.trainer", *args, f"--workdir={tmp_path / 'w'}"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 1
    lines = [l for l in proc.stderr.splitlines() if "wsol-train" in l or "Traceback" in l]
    assert lines and lines[-1].startswith(expected), proc.stderr[-1500:]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "w").exists()
