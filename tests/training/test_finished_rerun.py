"""Rerunning a finished wsol-train neither trains nor evaluates again: it
reuses the final weights and the test report of the same config and weights;
a changed evaluation protocol is evaluated again."""

import json
import os
import subprocess
import sys

import pytest

from wsol_keras.evaluation import records
from shared_dirs import smoke_cam_workdir

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_TRAIN = (
    "import sys; sys.argv = ['wsol-train'] + sys.argv[1:]; "
    "from wsol_keras import cli; cli.console('wsol-train')"
)


def _train(*args, cwd):
    return subprocess.run(
        [sys.executable, "-c", _TRAIN, *args], cwd=cwd, capture_output=True,
        text=True, timeout=600,
        env=dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2", CI="1"),
    )


@pytest.mark.slow  # a smoke run (shared) and a rerun in a subprocess
def test_rerun_of_a_finished_run_reuses_weights_and_report(tmp_path, tmp_path_factory):
    # The finished first run: a copy of the run's shared smoke CAM workdir,
    # what `wsol-train --config=synthetic_cam:smoke` leaves (tests/shared_dirs.py).
    wd = tmp_path / "run"
    smoke_cam_workdir(tmp_path_factory, wd)
    args = ["--config=synthetic_cam:smoke", f"--workdir={wd}"]
    files = ["metrics.json", "model.weights.h5", "heatmaps.png", "config.json"]
    before = {f: os.stat(wd / f).st_mtime_ns for f in files}
    second = _train(*args, cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "not evaluated again" in second.stdout
    assert {f: os.stat(wd / f).st_mtime_ns for f in files if f != "config.json"} == {
        f: t for f, t in before.items() if f != "config.json"
    }
    # The table is still printed, from the stored report.
    assert "max_box_acc_v2" in second.stdout
    assert json.loads((wd / "metrics.json").read_text())["split"] == "test"


def test_finished_report_needs_the_same_protocol_and_weights(tmp_path):
    from wsol_keras.configs import synthetic_cam

    config = synthetic_cam.get_config("smoke")
    weights = tmp_path / "model.weights.h5"
    weights.write_bytes(b"weights v1")
    record = records.provenance("test", config, None, records.weights_sha256(str(weights)),
                                str(weights))
    record.update(cam_threshold=0.3, cam_threshold_source=records.VAL_SEARCH)
    (tmp_path / "metrics.json").write_text(json.dumps(record))
    assert records.finished_report(str(tmp_path), config)["cam_threshold"] == 0.3
    other = synthetic_cam.get_config("smoke")
    other.eval.max_images = 8  # another evaluation protocol
    assert records.finished_report(str(tmp_path), other) is None
    weights.write_bytes(b"weights v2")  # other weights
    assert records.finished_report(str(tmp_path), config) is None
