"""Every code block of README.md runs (or is checked) in CI, so the README cannot drift.

How each fenced block is treated, by its language tag:

* ``python``: executed, each block in a fresh namespace, all blocks in one
  subprocess (one TensorFlow import), with the working directory a temporary
  folder. Substitution rules (the only differences from the README text):
    1. ``weights="imagenet"`` -> ``weights=None``: CI has no network; the code
       path is the same with random weights.
    2. ``/tmp/tflite`` -> a folder with a tiny exported TFLite model (untrained
       CAM on small_cnn, 64 px, float32 variant, its tflite_manifest.json).
    3. ``runs/demo`` -> a tiny untrained workdir (that model's config.json,
       model.weights.h5 and a metrics.json with its CAM threshold).
* ``bash`` / ``sh`` / ``shell``: every command is split out (continuation
  lines joined, comments dropped, ``&&`` / ``;`` / ``|`` separated, leading
  ``VAR=value`` assignments dropped). A package tool (a console script of
  setup.cfg, ``python -m wsol_keras...`` or ``python <path>.py`` of a module
  with ``define_flags`` or ``build_parser``) has its arguments parsed by the
  tool's real flag definitions: an unknown flag, a bad enum value, a missing
  required flag (e.g. ``--workdir``) or a config field that does not exist
  fails the test. These commands are not run: training and evaluation run in
  tests/training/test_trainer.py, the tools' --help and errors in tests/test_cli.py.
  Notation rules: ``[...]`` groups (optional flags) and ``...`` are dropped;
  a ``--help`` command only imports its tool (tests/test_cli.py runs every
  console script's --help); a ``--config=`` file that
  does not exist (``configs/<experiment>.py``, ``...``) becomes
  ``configs/synthetic_cam.py``. Other programs are skipped with the reason in
  `SKIPPED_PROGRAMS`; a program in none of these lists fails the test, so a
  new README block gets a rule before it can drift.
* no tag (directory layouts and the like): not code, skipped.
"""

import dataclasses
import json
import os
import re
import shlex
import subprocess
import sys
import configparser
import importlib
import importlib.util

import keras
import pytest

from file_modules import load_module
from wsol_keras import cli
from wsol_keras.training import trainer
from wsol_keras.training import workdir as workdir_lib
from wsol_keras.configs import base as config_base
from wsol_keras.models import registry

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")
DEFAULT_CONFIG = "configs/synthetic_cam.py"

SKIPPED_PROGRAMS = {
    "pip": "installs packages (CI installs the package itself)",
    "pytest": "the test suite itself",
    "docker": "needs a Docker daemon and the tensorflow/serving image",
    "saved_model_cli": "TensorFlow's own tool on an exported model",
    "tfds": "downloads and prepares a data set (network)",
    "cd": "shell navigation",
    "export": "shell environment",
    "mkdir": "shell",
    "ls": "shell",
    "cat": "shell",
    "echo": "shell",
}
NOT_CODE = ("", "text", "console-output")
SHELL = ("bash", "sh", "shell")


@dataclasses.dataclass
class Block:
    lang: str
    code: str
    line: int  # README line of the opening fence


def readme_blocks(text):
    """The fenced code blocks of a Markdown text, with their line numbers."""
    blocks, lang, start, lines = [], None, 0, []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if lang is None and stripped.startswith("```"):
            lang, start, lines = stripped[3:].strip().lower(), number, []
        elif lang is not None and stripped == "```":
            blocks.append(Block(lang, "\n".join(lines) + "\n", start))
            lang = None
        elif lang is not None:
            lines.append(line)
    assert lang is None, f"README.md: code block opened at line {start} is not closed"
    return blocks


BLOCKS = readme_blocks(open(README, encoding="utf-8").read())


def test_every_block_has_a_rule():
    for block in BLOCKS:
        assert block.lang in ("python",) + SHELL + NOT_CODE, (
            f"README.md line {block.line}: no rule for ```{block.lang} blocks "
            "in tests/test_readme.py"
        )
    assert any(b.lang == "python" for b in BLOCKS)


# --------------------------------------------------------------------- python

_RUN_BLOCKS = r"""
import json, sys, time, traceback
blocks = json.load(open(sys.argv[1]))
report = []
for block in blocks:
    start = time.time()
    try:
        exec(compile(block["code"], f"README.md:{block['line']}", "exec"), {"__name__": "__readme__"})
        report.append({"line": block["line"], "error": None, "seconds": time.time() - start})
    except BaseException:
        report.append({"line": block["line"], "error": traceback.format_exc(limit=6),
                       "seconds": time.time() - start})
print("@@REPORT@@" + json.dumps(report))
"""


def substitute_python(code, paths):
    """Applies the module docstring's substitution rules 1-3."""
    code = re.sub(r"""weights=(["'])imagenet\1""", "weights=None", code)
    code = code.replace("/tmp/tflite", paths["tflite"])
    return code.replace("runs/demo", paths["workdir"])


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny untrained workdir and its float32 TFLite export (rules 2 and 3)."""
    from wsol_keras.export import tflite_lib

    base = tmp_path_factory.mktemp("readme")
    keras.utils.set_random_seed(0)
    config = config_base.make_smoke(config_base.base_config())
    config.method = registry.default_method_config("cam")
    data_info = {
        "num_classes": 4,
        "class_names": ["ellipse", "box", "diamond", "triangle"],
        "hierarchy_sizes": [2, 1],
        "image_size": int(config.data.image_size),
    }
    model = trainer.build_compiled_model(config, data_info)
    wd = str(base / "workdir")
    workdir_lib.write_config(wd, config, data_info)
    workdir_lib.save_weights_atomic(model, workdir_lib.final_weights_path(wd))
    workdir_lib.write_json_atomic(
        os.path.join(wd, "metrics.json"), {"cam_threshold": 0.3}
    )
    tflite_dir = str(base / "tflite")
    tflite_lib.export_tflite(
        wd, tflite_dir, variants=("float32",), postprocess="heatmap"
    )
    return {"workdir": wd, "tflite": tflite_dir, "cwd": str(base)}


def test_python_blocks_run(exported):
    blocks = [
        {"line": b.line, "code": substitute_python(b.code, exported)}
        for b in BLOCKS
        if b.lang == "python"
    ]
    spec = os.path.join(exported["cwd"], "blocks.json")
    with open(spec, "w") as f:
        json.dump(blocks, f)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT)
    proc = subprocess.run(
        [sys.executable, "-c", _RUN_BLOCKS, spec],
        cwd=exported["cwd"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "@@REPORT@@" in proc.stdout, proc.stderr[-3000:]
    report = json.loads(proc.stdout.split("@@REPORT@@")[-1])
    assert len(report) == len(blocks)
    failures = [
        f"README.md python block at line {r['line']}:\n{r['error']}"
        for r in report
        if r["error"]
    ]
    assert not failures, "\n".join(failures)


# ----------------------------------------------------------------------- bash


def console_scripts():
    """console script name -> module, from setup.cfg's entry points."""
    parser = configparser.ConfigParser()
    parser.read(os.path.join(ROOT, "setup.cfg"))
    scripts = {}
    for line in parser["options.entry_points"]["console_scripts"].splitlines():
        if "=" in line:
            name, target = (part.strip() for part in line.split("=", 1))
            scripts[name] = target.split(":")[0]
            if scripts[name] == "wsol_keras.cli":  # the light entry point
                scripts[name] = cli.TOOLS[name][0]  # the tool's module
    return scripts


def shell_commands(code):
    """Token lists of each command of a shell block (see the module docstring)."""
    joined = re.sub(r"\\\n", " ", code)
    commands = []
    for line in joined.splitlines():
        tokens = shlex.split(line, comments=True)
        current = []
        for token in tokens + [";"]:
            if token in ("&&", "||", ";", "|"):
                while current and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", current[0]):
                    current.pop(0)  # VAR=value prefix
                if current:
                    commands.append(current)
                current = []
            else:
                current.append(token)
    return commands


def _module_of_path(path):
    real = os.path.relpath(os.path.realpath(os.path.join(ROOT, path)), ROOT)
    if not real.endswith(".py") or real.startswith(".."):
        return None
    return real[:-3].replace(os.sep, ".")


def tool_of(tokens, scripts):
    """(module or None, arguments, skip reason or None) of a command."""
    program = tokens[0]
    if program in scripts:
        return scripts[program], tokens[1:], None
    if program in ("python", "python3"):
        if tokens[1:2] == ["-m"]:
            return tokens[2], tokens[3:], None
        if tokens[1].endswith(".py"):
            assert os.path.exists(os.path.join(ROOT, tokens[1])), tokens[1]
            return _module_of_path(tokens[1]), tokens[2:], None
    if program in SKIPPED_PROGRAMS:
        return None, tokens[1:], SKIPPED_PROGRAMS[program]
    return None, tokens[1:], None


def normalize_args(args):
    """The notation rules of the module docstring."""
    out, skipping = [], False
    for token in args:
        if token.startswith("[--"):
            skipping = True
        if skipping:
            skipping = not token.endswith("]")
            continue
        if token == "...":
            continue
        match = re.match(r"^--config=(.*)$", token)
        if match and not os.path.exists(
            os.path.join(ROOT, match.group(1).split(":")[0])
        ):
            token = f"--config={DEFAULT_CONFIG}"
        out.append(token)
    return out


def _import(module_name):
    # Scripts of the checkout (tools/, bench/) are not installed: load them from
    # their file, as `python tools/x.py` would, wherever pytest runs from.
    path = os.path.join(ROOT, *module_name.split(".")) + ".py"
    if module_name.split(".")[0] in ("tools", "bench") and os.path.exists(path):
        return load_module(module_name, path)
    return importlib.import_module(module_name)


def check_arguments(module_name, prog, args):
    """Parses `args` with the tool's own flag definitions; raises on errors."""
    module = _import(module_name)
    if hasattr(module, "define_flags"):
        fv = cli.make_flag_values(module.define_flags)
        # ml_collections' config flag reads its --config.* overrides from
        # sys.argv when --config is parsed.
        saved, sys.argv = sys.argv, [prog] + args
        try:
            left = fv([prog] + args)
        finally:
            sys.argv = saved
        assert left == [prog], f"unexpected positional arguments {left[1:]}"
        return "flags"
    if hasattr(module, "build_parser"):
        module.build_parser().parse_args(args)
        return "argparse"
    return None


SHELL_COMMANDS = [
    (block.line, tokens)
    for block in BLOCKS
    if block.lang in SHELL
    for tokens in shell_commands(block.code)
]


@pytest.mark.parametrize(
    "line,tokens",
    SHELL_COMMANDS,
    ids=[f"L{line}-{' '.join(t)[:60]}" for line, t in SHELL_COMMANDS],
)
def test_shell_command_arguments_parse(line, tokens):
    scripts = console_scripts()
    module, args, skip = tool_of(tokens, scripts)
    where = f"README.md line {line}: {' '.join(tokens)}"
    if skip is not None:
        return  # see SKIPPED_PROGRAMS for why
    assert (
        module is not None
    ), f"{where}: no rule for program {tokens[0]!r} in tests/test_readme.py"
    if "--help" in args or "--helpfull" in args:
        _import(module)  # --help itself: tests/test_cli.py
        return
    try:
        kind = check_arguments(module, tokens[0], normalize_args(args))
    except (Exception, SystemExit) as error:  # pylint: disable=broad-except
        pytest.fail(f"{where}: {type(error).__name__}: {error}")
    if kind is None:  # a script without a flag definition hook (tools/*.py)
        assert os.path.exists(os.path.join(ROOT, tokens[1])), where


def test_rules_catch_a_command_missing_its_workdir():
    # The README's old sweep command lacked --workdir: the check must refuse it.
    with pytest.raises(Exception, match="workdir"):
        check_arguments(
            "wsol_keras.evaluation.evaluator",
            "wsol-eval",
            normalize_args(["--split=val", "--sweep_layers=a,b"]),
        )
    with pytest.raises(Exception, match="no_such_flag"):
        check_arguments(
            "wsol_keras.training.trainer", "wsol-train", ["--workdir=x", "--no_such_flag=1"]
        )
