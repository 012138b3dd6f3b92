"""`--config` takes an installed config's name from any folder (README: the
configs are installed with the package), a module name, a checkout-style
path, or a file path; ``:smoke`` after each; an unknown name is one line
listing the installed configs."""

import os
import sys

import pytest
from absl import flags

from wsol_keras import config_flag


def _parse(args, monkeypatch, define):
    fv = flags.FlagValues()
    argv = ["wsol-train"] + args
    monkeypatch.setattr(sys, "argv", argv)
    define(fv)
    fv(argv)
    return fv


@pytest.mark.parametrize(
    "spec",
    [
        "synthetic_spn:smoke",
        "wsol_keras.configs.synthetic_spn:smoke",
        "configs/synthetic_spn.py:smoke",  # the README's form, outside a checkout
    ],
)
def test_config_by_name_from_another_folder(spec, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no configs/ link here
    fv = _parse(
        [f"--config={spec}", "--config.train.epochs=7"],
        monkeypatch,
        lambda fv: config_flag.define_config_flag("config", None, "h", flag_values=fv),
    )
    assert fv.config.method.name == "spn"
    assert fv.config.train.epochs == 7
    assert fv.config.train.steps_per_epoch  # :smoke reached get_config


def test_config_file_path_still_works(tmp_path, monkeypatch):
    path = tmp_path / "mine.py"
    path.write_text(
        "import ml_collections\n"
        "def get_config(arg=None):\n"
        "    return ml_collections.ConfigDict({'x': 1, 'arg': str(arg)})\n"
    )
    fv = _parse(
        [f"--config={path}:hello"],
        monkeypatch,
        lambda fv: config_flag.define_config_flag("config", None, "h", flag_values=fv),
    )
    assert fv.config.x == 1 and fv.config.arg == "hello"


def test_unknown_config_name_lists_the_installed_ones(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(config_flag.UserError) as info:
        config_flag.resolve_config("synthetic_spm")
    message = str(info.value)
    assert "\n" not in message
    assert "did you mean synthetic_spn" in message
    for name in ("synthetic_dgl", "cub_vgg16_cam", "voc07_vgg16_spn"):
        assert name in message
    assert "base" not in message.split("one of:")[1].split(", ")
