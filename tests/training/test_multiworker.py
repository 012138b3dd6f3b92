"""`wsol-train --strategy=multiworker`: two worker processes on loopback."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SMOKE = ["--config=configs/synthetic_cam.py:smoke", "--config.train.epochs=2"]
REPORT = (
    "config.json",
    "history.csv",
    "model.weights.h5",
    "metrics.json",
    "heatmaps.png",
    "box_accuracy.png",
)


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _start(args, tmpdir, tf_config=None):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CI="1", TMPDIR=str(tmpdir))
    env.pop("TF_CONFIG", None)
    if tf_config:
        env["TF_CONFIG"] = json.dumps(tf_config)
    return subprocess.Popen(
        [sys.executable, "-m", "wsol_keras.training.trainer", *SMOKE, *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _weights(path):
    import h5py

    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(
            lambda name, obj: out.__setitem__(name, obj[()])
            if isinstance(obj, h5py.Dataset)
            else None
        )
    return out


@pytest.mark.slow
def test_two_workers_on_loopback_match_one_machine(tmp_path):
    chief_wd, worker_wd = tmp_path / "chief", tmp_path / "worker"
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    tmpdirs = [tmp_path / f"tmp{i}" for i in range(3)]
    for d in tmpdirs:
        d.mkdir()
    procs = [
        _start(
            [f"--workdir={wd}", "--strategy=multiworker"],
            tmpdirs[i],
            {"cluster": cluster, "task": {"type": "worker", "index": i}},
        )
        for i, wd in enumerate((chief_wd, worker_wd))
    ]
    # One machine, the same global batch of 8 over two replicas of 4 (so that
    # BatchNorm normalizes over the same 4 images as on each worker).
    single_wd = tmp_path / "single"
    procs.append(
        _start(
            [f"--workdir={single_wd}", "--strategy=mirrored", "--cpu_replicas=2"],
            tmpdirs[2],
        )
    )
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    for p, out in zip(procs, outputs):
        assert p.returncode == 0, out[-4000:]

    # Only the chief wrote: one complete report, nothing from worker 1, and
    # worker 1's temporary directory is gone.
    for name in REPORT:
        assert (chief_wd / name).exists(), name
    assert not worker_wd.exists()
    assert os.listdir(tmpdirs[1]) == []
    assert outputs[0].count("gt_known_loc") == 1
    assert "gt_known_loc" not in outputs[1]
    with open(chief_wd / "history.csv") as f:
        assert len(f.read().splitlines()) == 1 + 2  # header + 2 epochs

    chief, single = _weights(chief_wd / "model.weights.h5"), _weights(
        single_wd / "model.weights.h5"
    )
    assert chief.keys() == single.keys()
    for name in chief:
        np.testing.assert_allclose(
            chief[name], single[name], rtol=1e-4, atol=1e-5, err_msg=name
        )
    with open(chief_wd / "metrics.json") as f, open(single_wd / "metrics.json") as g:
        m_chief, m_single = json.load(f), json.load(g)
    assert m_chief["top1_cls"] == m_single["top1_cls"]
    assert m_chief["num_images"] == m_single["num_images"]
