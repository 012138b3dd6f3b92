"""Console scripts as a user starts them: --help without TensorFlow and exit
0, one exit-status convention (0 ok, 1 error, 2 usage), one-line usage
errors for flags and --config fields (the suggestion first)."""

import os
import re
import subprocess
import sys

import pytest

from wsol_keras import cli
from wsol_keras import cli_flags

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_START = r"""
import atexit, sys
prog, args = sys.argv[1], sys.argv[2:]
sys.argv = [prog] + args
atexit.register(lambda: sys.stderr.write(
    "\n@@TF=%s\n" % ("tensorflow" in sys.modules)))
from wsol_keras import cli
cli.console(prog)
"""


def start(prog, *args, cwd=REPO):
    """Runs console script `prog` as its setuptools stub does (argv[0] = prog)."""
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("WSOL_TRACEBACK", None)
    proc = subprocess.run(
        [sys.executable, "-c", _START, prog, *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
    )
    tf_imported = "@@TF=True" in proc.stderr
    err = proc.stderr.split("\n@@TF=")[0]
    err_lines = [
        ln for ln in err.splitlines()
        if ln.strip() and not ln.startswith(("WARNING: All log", "I0000", "E0000", "W0000", "To enable"))
    ]
    return proc.returncode, proc.stdout, err_lines, tf_imported


def test_console_scripts_point_at_the_light_entry_points():
    with open(os.path.join(REPO, "setup.cfg")) as f:
        text = f.read()
    for prog in cli.TOOLS:
        attr = prog.replace("wsol-", "").replace("-", "_") + "_main"
        assert f"{prog} = wsol_keras.cli:{attr}" in text, prog
        assert callable(getattr(cli, attr))


@pytest.mark.parametrize("prog", sorted(cli.TOOLS))
def test_help_is_fast_exit_0_and_lists_the_flags(prog):
    rc, out, err, tf_imported = start(prog, "--help")
    assert rc == 0, err
    assert not tf_imported  # the help text needs no TensorFlow
    first_doc_line = cli.module_doc(cli.TOOLS[prog][0]).strip().splitlines()[0]
    assert out.lstrip().startswith(first_doc_line)
    names = cli.tool_flag_names(getattr(cli_flags, cli.TOOLS[prog][1])) | {"traceback"}
    for name in names:
        assert re.search(rf"^  --(\[no\])?{name}\b", out, re.M), (name, out)


def test_flag_choices_mirror_the_tools_constants():
    from wsol_keras.evaluation import protocol
    from wsol_keras.export import inference
    from wsol_keras.localization import maps
    from wsol_keras.predict import image_files, predictors

    assert cli_flags.BOX_METHODS == protocol.BOX_METHODS
    assert cli_flags.IMAGE_SIZE_MODES == protocol.IMAGE_SIZE_MODES
    assert cli_flags.MAP_METHODS == maps.MAP_METHODS
    assert cli_flags.PREPROCESS_MODES == predictors.PREPROCESS_MODES
    assert cli_flags.DEFAULT_MAX_PIXELS == image_files.DEFAULT_MAX_PIXELS
    assert cli_flags.DEFAULT_MAX_IMAGE_PIXELS == inference.DEFAULT_MAX_IMAGE_PIXELS


@pytest.mark.parametrize(
    "args,expected",
    [
        (["--config.train.epoch=3", "--workdir=w"],
         "wsol-train: usage error: did you mean --config.train.epochs?"),
        (["--config=synthetic_spn", "--config.method.delta=0.7", "--workdir=w"],
         "wsol-train: usage error: --config.method.delta: config.method has no "
         "field 'delta' (method 'spn' takes: dropout, epsilon"),
        (["--config=synthetic_spm", "--workdir=w"],
         "wsol-train: usage error: --config=synthetic_spm: no such file or "
         "installed config (did you mean synthetic_spn?)"),
        (["--bogus=1"], "wsol-train: usage error: Unknown command line flag 'bogus'"),
        (["--config=synthetic_cam:fintune,smoke", "--workdir=w"],
         "wsol-train: usage error: config argument 'fintune,smoke': 'fintune' "
         "is not one of smoke, finetune (did you mean 'finetune'?)"),
    ],
    ids=["field typo", "method field", "config name", "unknown flag", "config argument"],
)
def test_usage_errors_are_one_line_exit_2(args, expected, tmp_path):
    rc, _, err, _ = start("wsol-train", *args, cwd=str(tmp_path))
    assert rc == 2, err
    assert len(err) == 1 and err[0].startswith(expected), err
    assert not os.path.exists(tmp_path / "w")


def test_predict_and_score_errors_exit_1_as_the_other_tools(tmp_path):
    rc, _, err, _ = start(
        "wsol-predict", f"--workdir={tmp_path}/none", f"--images={tmp_path}",
        f"--output={tmp_path}/out",
    )
    assert rc == 1, err
    assert len(err) == 1 and err[0].startswith("wsol-predict: error: "), err
