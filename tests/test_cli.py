"""The command-line tools as a new user meets them (issue 12, "friction").

`--help` of the console scripts, one-line errors for bad input (tracebacks
behind --traceback / WSOL_TRACEBACK=1), --print_config, --list_layers, the
report's headings, "none" weights, the offline ImageNet download, the serving
client without a server, and a quiet wsol-export-tflite.
"""

import json
import os
import re
import subprocess
import sys
import urllib.error

import keras
import numpy as np
import pytest
import tensorflow as tf

from wsol_keras.models import backbones
from wsol_keras import cli
from wsol_keras.localization import dual_gradient
from wsol_keras.evaluation import evaluator
from wsol_keras.localization import layer_paths
from wsol_keras.training import trainer
from wsol_keras.training import workdir as workdir_lib
from wsol_keras.configs import base as config_base
from wsol_keras.export import export_saved_model
from wsol_keras.export import export_tflite
from wsol_keras.export import tflite_lib
from wsol_keras.export.serving import client
from wsol_keras.models import registry

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
S = 32
DATA_INFO = {
    "num_classes": 4,
    "class_names": ["a", "b", "c", "d"],
    "hierarchy_sizes": [2, 1],
    "image_size": S,
}

# (console script, module, flags its --help must list)
TOOLS = [
    (
        "wsol-train",
        "wsol_keras.training.trainer",
        ["workdir", "config", "strategy", "print_config"],
    ),
    (
        "wsol-eval",
        "wsol_keras.evaluation.evaluator",
        ["workdir", "dgl_layer", "list_layers", "print_config"],
    ),
    (
        "wsol-export",
        "wsol_keras.export.export_saved_model",
        ["workdir", "output", "version"],
    ),
    (
        "wsol-export-tflite",
        "wsol_keras.export.export_tflite",
        ["workdir", "variants", "postprocess"],
    ),
]


_RUN_MANY = r"""
import importlib, json, os, sys, tempfile
cases = json.loads(sys.argv[1])
for module in sorted({c["module"] for c in cases}):
    importlib.import_module(module)  # TensorFlow once, before the forks
results = []
for case in cases:
    out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
    sys.stdout.flush(); sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # a fresh flag registry per run, as each console script has
        os.dup2(out.fileno(), 1); os.dup2(err.fileno(), 2)
        os.environ.pop("WSOL_TRACEBACK", None)
        os.environ.update(case["env"])
        sys.argv = [case["prog"]] + case["args"]
        code = 0
        try:
            importlib.import_module(case["module"]).run_main()
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except BaseException:
            import traceback; traceback.print_exc(); code = 99
        sys.stdout.flush(); sys.stderr.flush()
        os._exit(code or 0)
    _, status = os.waitpid(pid, 0)
    out.seek(0); err.seek(0)
    results.append([os.waitstatus_to_exitcode(status),
                    out.read().decode(), err.read().decode()])
print("@@RESULTS@@" + json.dumps(results))
"""


def run_consoles(cases):
    """Runs console scripts as setuptools' stubs do, one TF import for all.

    Each case is (prog, module, args[, env]); returns [(returncode, stdout,
    stderr)]. A console-script stub is a `__main__` without a docstring or
    flags of its own and sys.argv[0] is the script name: where absl's --help
    printed only "Try --helpfull". Each run is a fork, so each has a fresh
    flag registry like a new process.
    """
    payload = [
        {
            "prog": c[0],
            "module": c[1],
            "args": list(c[2]),
            "env": c[3] if len(c) > 3 else {},
        }
        for c in cases
    ]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=REPO)
    proc = subprocess.run(
        [sys.executable, "-c", _RUN_MANY, json.dumps(payload)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "@@RESULTS@@" in proc.stdout, proc.stderr[-3000:]
    return json.loads(proc.stdout.split("@@RESULTS@@")[-1])


MISSING_WORKDIR = "/nonexistent/wsol_cli_test_workdir"


@pytest.fixture(scope="module")
def console_runs(tmp_path_factory):
    """--help of every tool, a bad --workdir (plain and with WSOL_TRACEBACK=1),
    --print_config and a smoke training run: all in one subprocess."""
    smoke_workdir = str(tmp_path_factory.mktemp("cli") / "smoke")
    cases = [(prog, module, ["--help"]) for prog, module, _ in TOOLS]
    cases += [
        ("wsol-eval", "wsol_keras.evaluation.evaluator", [f"--workdir={MISSING_WORKDIR}"]),
        (
            "wsol-eval",
            "wsol_keras.evaluation.evaluator",
            [f"--workdir={MISSING_WORKDIR}"],
            {"WSOL_TRACEBACK": "1"},
        ),
        (
            "wsol-train",
            "wsol_keras.training.trainer",
            [
                "--config=configs/synthetic_cam.py:smoke",
                "--config.train.epochs=7",
                "--print_config",
            ],
        ),
        (
            "wsol-train",
            "wsol_keras.training.trainer",
            [
                "--config=configs/synthetic_cam.py:smoke",
                f"--workdir={smoke_workdir}",
            ],
            {"CI": "1"},
        ),
    ]
    results = run_consoles(cases)
    runs = {prog + " --help": r for (prog, _, _), r in zip(TOOLS, results)}
    names = ["bad workdir", "bad workdir traceback", "print_config", "smoke train"]
    runs.update(zip(names, results[len(TOOLS) :]))
    runs["smoke workdir"] = smoke_workdir
    return runs


@pytest.mark.slow  # shares console_runs: one subprocess, ~30 s in all
@pytest.mark.parametrize("prog,module,names", TOOLS, ids=[t[0] for t in TOOLS])
def test_help_lists_the_tools_own_flags(console_runs, prog, module, names):
    # Before: the console script's --help printed only "Try --helpfull".
    _, out, err = console_runs[prog + " --help"]
    for name in names + ["traceback"]:
        assert re.search(rf"^  --(\[no\])?{name}\b", out, re.M), (
            name,
            out,
            err[-2000:],
        )
    assert out.lstrip().startswith(sys.modules[module].__doc__.strip().splitlines()[0])
    if prog == "wsol-train":
        assert "wsol_keras/configs/base.py" in out and "--config." in out


@pytest.mark.slow  # shares console_runs: one subprocess, ~30 s in all
def test_bad_input_is_one_line_and_traceback_on_request(console_runs):
    rc, _, err = console_runs["bad workdir"]
    assert rc == 1, err[-2000:]
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("wsol-eval: error: ") and MISSING_WORKDIR in last, last
    rc, _, err = console_runs["bad workdir traceback"]
    assert rc != 0 and "Traceback" in err and "FileNotFoundError" in err


@pytest.mark.slow  # shares console_runs: one subprocess, ~30 s in all
def test_print_config_shows_overrides_without_a_workdir(console_runs):
    rc, out, err = console_runs["print_config"]
    assert rc == 0, err[-2000:]
    assert "epochs: 7" in out and "backbone: small_cnn" in out


@pytest.mark.slow  # shares console_runs: one subprocess, ~30 s in all
def test_training_names_split_map_and_report_location(console_runs):
    rc, out, err = console_runs["smoke train"]
    assert rc == 0, err[-3000:]
    lines = out.splitlines()
    heading = lines.index("cam / small_cnn, test split, map cam:")
    assert lines[heading + 1].startswith("metric")  # right above the table
    workdir = console_runs["smoke workdir"]
    assert (
        f"Report written to {workdir}/ (metrics.json, heatmaps.png, box_accuracy.png)"
        in lines
    )
    assert os.path.exists(os.path.join(workdir, "heatmaps.png"))


def test_help_lists_flags_of_every_tool_defined_once():
    # define_flags(flag_values) is what cli.run and the README test use.
    for _, module, names in TOOLS:
        mod = sys.modules[module]
        defined = cli.tool_flag_names(mod.define_flags)
        assert set(names) <= defined, (module, defined)


def _tiny_workdir(tmp_path):
    keras.utils.set_random_seed(0)
    config = config_base.make_smoke(config_base.base_config())
    config.method = registry.default_method_config("cam")
    config.data.image_size = S
    model = trainer.build_compiled_model(config, DATA_INFO)
    wd = str(tmp_path / "wd")
    workdir_lib.write_config(wd, config, DATA_INFO)
    workdir_lib.save_weights_atomic(model, workdir_lib.final_weights_path(wd))
    return wd, model, config


def test_guarded_main_one_line_exit_1_and_bugs_keep_traceback(capsys):
    fv = cli.make_flag_values(lambda fv: None)
    fv(["prog"])

    def bad_value(argv):
        raise ValueError("config.train.batch_size=64 exceeds\nthe 32 training images")

    with pytest.raises(SystemExit) as e:
        cli.guarded(bad_value, "wsol-x", fv)(["prog"])
    assert e.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        "wsol-x: error: config.train.batch_size=64 exceeds the 32 training "
        "images (--traceback for details)"
    )

    def bug(argv):
        raise ZeroDivisionError("a bug, not bad input")

    with pytest.raises(ZeroDivisionError):
        cli.guarded(bug, "wsol-x", fv)(["prog"])
    fv["traceback"].value = True
    with pytest.raises(ValueError):
        cli.guarded(bad_value, "wsol-x", fv)(["prog"])


def test_train_requires_workdir_unless_printing_config():
    fv = cli.make_flag_values(trainer.define_flags)
    with pytest.raises(Exception, match="--workdir is required"):
        fv(["wsol-train"])
    fv(["wsol-train", "--print_config"])  # parses


def test_layer_paths_mark_spatial_layers_and_errors_list_full_paths(tmp_path):
    _, model, _ = _tiny_workdir(tmp_path)
    entries = {e.path: e for e in layer_paths.layer_paths(model)}
    relu = "backbone/small_cnn_features/stage3_relu1"
    assert entries[relu].dgl and entries[relu].shape[1:] == (S // 4, S // 4, 128)
    assert not entries["backbone/small_cnn_features/stage3_bn1"].dgl
    assert not entries["backbone"].dgl  # a container, not one feature map
    # Every listed path resolves to the layer it names.
    for path in entries:
        assert dual_gradient.resolve_layer(model, path).name == path.split("/")[-1]
    text = layer_paths.format_layer_paths(model)
    assert f"* {relu}" in text
    with pytest.raises(ValueError) as e:
        dual_gradient.resolve_layer(model, "stage3_relu1")
    assert f"Did you mean {relu!r}" in str(e.value) and "--list_layers" in str(e.value)


def test_table_heading_and_heatmap_grid_title(tmp_path):
    from wsol_keras.evaluation import report
    config = config_base.base_config()
    config.eval.map_method = "dgl"
    config.eval.dgl_layer = "backbone/x/stage3_relu1"
    heading = report.table_heading("val", config)
    assert (
        heading
        == "cam / small_cnn, val split, map dgl on layer backbone/x/stage3_relu1:"
    )
    collector = report.ExampleCollector(
        2, ["a", "b"], title=report.grid_title("val", config)
    )
    batch = {
        "image": np.zeros((2, S, S, 3), np.uint8),
        "num_boxes": np.array([1, 1]),
        "boxes": np.array([[[2, 2, 20, 20]], [[4, 4, 9, 9]]], np.float32),
        "label": np.array([0, 1]),
    }

    tensors = {k: tf.constant(v) for k, v in batch.items()}
    maps = np.zeros((2, S, S), np.float32)
    maps[:, 5:15, 5:15] = 1
    collector(tensors, {"maps": maps, "logits": np.eye(2)}, 0.5)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    saved = {}
    original = plt.close

    def keep(fig):
        saved["fig"] = fig
        original(fig)

    plt.close = keep
    try:
        collector.save(str(tmp_path / "heatmaps.png"))
    finally:
        plt.close = original
    fig = saved["fig"]
    assert (
        fig._suptitle.get_text()
        == "cam / small_cnn - map dgl on layer backbone/x/stage3_relu1 - val split"
    )
    labels = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    assert labels == ["predicted box (CAM threshold 0.50)", "ground truth"]
    assert (tmp_path / "heatmaps.png").stat().st_size > 0


@pytest.mark.parametrize("spelling", [None, "None", "none", "", " NONE "])
def test_no_weights_spellings(spelling):
    assert backbones.normalize_weights(spelling) is None
    net = backbones.build_backbone("small_cnn", 32, weights=spelling)
    assert net.output.shape[1:] == (8, 8, 128)


def test_offline_imagenet_download_names_the_fix(monkeypatch, tmp_path):
    from keras.src.utils import file_utils

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(file_utils, "urlretrieve", offline)
    monkeypatch.setattr(file_utils.config, "keras_home", lambda: str(tmp_path))
    with pytest.raises(OSError) as e:
        backbones.build_backbone("mobilenet_v2", 96, weights="imagenet")
    message = str(e.value)
    assert "--config.model.weights=/path/to/" in message
    assert "--config.model.weights=none" in message
    assert "name resolution" in message


def test_serving_client_without_server_is_one_line(tmp_path, capsys):
    image = tmp_path / "a.jpg"
    image.write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(SystemExit) as e:
        client.main(
            ["--model_name=m", f"--images={image}", "--port=1", "--host=127.0.0.1"]
        )
    message = str(e.value.code)
    assert message.startswith("client.py: error: no TF Serving REST server reachable")
    assert "127.0.0.1:1" in message and "\n" not in message


def test_serving_client_prints_heatmaps_only_when_asked():
    heat = np.ones((4, 4)).tolist()
    rest = [
        {"classes": [1], "scores": [0.9], "boxes": [[0, 0, 3, 3]], "heatmaps": heat}
    ]
    short = client.summarize(rest)
    assert short[0]["heatmaps"] == {"shape": [4, 4]} and short[0]["classes"] == [1]
    assert client.summarize(rest, heatmaps=True)[0]["heatmaps"] == heat
    grpc = {"classes": np.array([[1], [2]]), "heatmaps": np.zeros((2, 3, 3))}
    rows = client.summarize(grpc)
    assert [r["classes"] for r in rows] == [[1], [2]]
    assert rows[1]["heatmaps"] == {"shape": [3, 3]}
    json.dumps(rows)


@pytest.mark.slow
def test_tflite_conversion_fallback_is_quiet(tmp_path, capfd):
    from wsol_keras.export import inference

    _, model, config = _tiny_workdir(tmp_path)
    module = inference.InferenceModule(model, config, 0.3)
    capfd.readouterr()
    _, info = tflite_lib.convert(module, "float32", postprocess="box")
    err = capfd.readouterr().err
    # The box level does not convert (its ops are not TFLite builtins): it
    # falls back, and the converter's per-op diagnostics stay out of stderr.
    assert info["postprocess_in_graph"] == "heatmap"
    assert info["conversion_fallback"]
    assert "error:" not in err, err[:2000]
    line = tflite_lib.describe_variant(
        dict(info, file="m.tflite", bytes=2048, input_dtype="float32", outputs=["cams"])
    )
    assert "on the host: the box" in line and "\n" not in line
