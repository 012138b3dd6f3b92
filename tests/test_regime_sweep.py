"""tools/regime_sweep.py: both regimes x methods x seeds, resumable, summary table."""

import json
import os
import subprocess
import sys

import pytest

from file_modules import load_module

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "tools", "regime_sweep.py")


@pytest.fixture(scope="module")
def sweep():
    return load_module("regime_sweep", SCRIPT)


def _finished(root, regime, method, seed, weights, **metrics):
    wd = os.path.join(root, regime, method, f"seed{seed}")
    os.makedirs(wd)
    with open(os.path.join(wd, "config.json"), "w") as f:
        json.dump({"config": {"seed": seed, "model": {"weights": weights}}}, f)
    with open(os.path.join(wd, "metrics.json"), "w") as f:
        json.dump({"checkpoint": "last", "threshold_split": "val", "split": "test",
                   **metrics}, f)
    return wd


def test_finished_seeds_are_summarized_as_mean_and_population_std(sweep, tmp_path):
    root = str(tmp_path / "sweep")
    for seed, (cls, v2) in enumerate([(60.0, 40.0), (70.0, 45.0), (80.0, 50.0)]):
        _finished(root, "scratch", "spn", seed, None, top1_cls=cls, gt_known_loc=50.0,
                  top1_loc=30.0, max_box_acc=41.0, max_box_acc_v2=v2)
    summary = sweep.main([f"--root={root}", "--regimes=scratch", "--methods=spn"])
    cell = summary["scratch"]["spn"]
    assert cell["n"] == 3 and cell["seeds"] == [0, 1, 2]
    # mean 70, population std sqrt(((-10)^2 + 0 + 10^2) / 3) = 8.165
    assert cell["mean"]["top1_cls"] == pytest.approx(70.0)
    assert cell["std"]["top1_cls"] == pytest.approx((200 / 3) ** 0.5)
    assert cell["std"]["max_box_acc_v2"] == pytest.approx((50 / 3) ** 0.5)
    assert "pxap" not in cell["mean"]  # absent from every record
    with open(os.path.join(root, "summary.md")) as f:
        table = f.read()
    assert "python tools/regime_sweep.py --root=" in table.splitlines()[0]
    row = [ln for ln in table.splitlines() if ln.startswith("| scratch | spn |")]
    assert row == ["| scratch | spn | 3 | 70.0 +- 8.2 | 50.0 +- 0.0 | 30.0 +- 0.0 "
                   "| 41.0 +- 0.0 | 45.0 +- 4.1 | - |"]
    with open(os.path.join(root, "summary.json")) as f:
        assert json.load(f)["results"]["scratch"]["spn"]["metrics"]["top1_cls"] == [
            60.0, 70.0, 80.0]


def test_print_only_lists_the_missing_runs_and_writes_nothing(sweep, tmp_path, capsys):
    root = str(tmp_path / "sweep")
    _finished(root, "finetune", "acol", 0, "synthetic", top1_cls=50.0)
    sweep.main([f"--root={root}", "--regimes=finetune", "--methods=acol",
                "--seeds=0,1", "--print_only", "--", "--config.train.epochs=3"])
    out = capsys.readouterr().out
    todo = [ln for ln in out.splitlines() if ln.startswith("to run:")]
    assert todo == [
        f"to run: wsol-train --config=synthetic_acol:finetune "
        f"--workdir={root}/finetune/acol/seed1 --config.seed=1 --config.train.epochs=3"
    ]
    assert "| finetune | acol | 1 | 50.0 +- 0.0 |" in out
    assert not os.path.exists(os.path.join(root, "summary.md"))


def test_pretrain_first_pretrains_then_fine_tunes_from_its_backbone(sweep, tmp_path, capsys):
    root = str(tmp_path / "sweep")
    sweep.main([f"--root={root}", "--regimes=scratch,finetune", "--methods=cam",
                "--seeds=0", "--pretrain_first", "--pretrain_epochs=30", "--print_only"])
    todo = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("to run:")]
    assert todo == [
        f"to run: wsol-train --config=pretrain_small_cnn --workdir={root}/pretrain "
        "--allow_config_change --noevaluate --config.train.epochs=30",
        f"to run: wsol-train --config=synthetic_cam --workdir={root}/scratch/cam/seed0 "
        "--config.seed=0",
        f"to run: wsol-train --config=synthetic_cam:finetune "
        f"--workdir={root}/finetune/cam/seed0 --config.seed=0 "
        f"--config.model.weights={root}/pretrain/backbone.weights.h5",
    ]


def test_dgl_is_the_dgl_record_of_the_cam_workdir(sweep, tmp_path, monkeypatch):
    root = str(tmp_path / "sweep")
    layer = "backbone/small_cnn_features/stage3_relu1"
    monkeypatch.setattr(sweep, "dgl_layer", lambda: layer)
    cam = _finished(root, "scratch", "cam", 0, None, top1_cls=90.0, max_box_acc_v2=40.0)
    for name, record_layer, v2 in (("test-dgl-a", "other/layer", 1.0),
                                   ("test-dgl-b", layer, 55.0)):
        os.makedirs(os.path.join(cam, "eval", name))
        with open(os.path.join(cam, "eval", name, "metrics.json"), "w") as f:
            json.dump({"map_method": "dgl", "layer": record_layer, "top1_cls": 90.0,
                       "max_box_acc_v2": v2}, f)
    summary = sweep.main([f"--root={root}", "--regimes=scratch", "--methods=dgl",
                          "--seeds=0"])
    assert list(summary["scratch"]) == ["dgl"]
    assert summary["scratch"]["dgl"]["mean"]["max_box_acc_v2"] == 55.0
    with open(os.path.join(root, "scratch", "dgl", "seed0", "metrics.json")) as f:
        assert json.load(f)["trained_workdir"] == cam


def test_a_finished_workdir_of_the_other_regime_is_refused(sweep, tmp_path):
    root = str(tmp_path / "sweep")
    _finished(root, "finetune", "cam", 0, None, top1_cls=90.0)
    with pytest.raises(SystemExit, match="model.weights=None seed=0, not 'synthetic'"):
        sweep.main([f"--root={root}", "--regimes=finetune", "--methods=cam", "--seeds=0"])


def test_unknown_method_is_a_usage_error(sweep, tmp_path, capsys):
    with pytest.raises(SystemExit):
        sweep.main([f"--root={tmp_path}", "--methods=cam,acl"])
    assert "'acl' is not one of" in capsys.readouterr().err


@pytest.mark.slow  # one smoke training in a subprocess (~30 s on 2 cores)
def test_smoke_sweep_trains_writes_the_table_and_skips_on_rerun(tmp_path):
    root = str(tmp_path / "sweep")
    args = [sys.executable, SCRIPT, f"--root={root}", "--methods=cam",
            "--regimes=finetune", "--seeds=0", "--smoke"]
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2")
    first = subprocess.run(args, cwd=str(tmp_path), env=env, capture_output=True,
                           text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "+ wsol-train --config=synthetic_cam:finetune,smoke" in first.stdout
    wd = os.path.join(root, "finetune", "cam", "seed0")
    with open(os.path.join(wd, "metrics.json")) as f:
        metrics = json.load(f)
    assert metrics["threshold_split"] == "val"
    with open(os.path.join(root, "summary.json")) as f:
        cell = json.load(f)["results"]["finetune"]["cam"]
    for key in ("top1_cls", "gt_known_loc", "top1_loc", "max_box_acc",
                "max_box_acc_v2", "pxap"):
        assert cell["metrics"][key] == [pytest.approx(metrics[key])], key
    with open(os.path.join(root, "summary.md")) as f:
        table = f.read()
    row = [ln for ln in table.splitlines() if ln.startswith("| finetune | cam | 1 |")]
    assert len(row) == 1 and row[0].count("+-") == 6, table
    weights = os.path.join(wd, "model.weights.h5")
    before = os.stat(weights).st_mtime_ns
    second = subprocess.run(args, cwd=str(tmp_path), env=env, capture_output=True,
                            text=True, timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "+ wsol-train" not in second.stdout
    assert os.stat(weights).st_mtime_ns == before
