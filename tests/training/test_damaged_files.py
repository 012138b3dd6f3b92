"""Damaged workdir files give one-line errors naming the file (and line)."""

import os

import keras
import pytest

from wsol_keras import cli
from wsol_keras.configs import base as config_base
from wsol_keras.export import saved_model_lib
from wsol_keras.models import registry
from wsol_keras.training import trainer
from wsol_keras.training import workdir as workdir_lib

INFO = {"num_classes": 4, "class_names": list("abcd"), "hierarchy_sizes": [2, 1], "image_size": 32}


def _workdir(path):
    keras.utils.set_random_seed(0)
    config = config_base.make_smoke(config_base.base_config())
    config.method = registry.default_method_config("cam")
    config.data.image_size = 32
    model = trainer.build_compiled_model(config, INFO)
    workdir_lib.write_config(path, config, INFO)
    workdir_lib.save_weights_atomic(model, workdir_lib.final_weights_path(path))
    return model, config


def _truncate(path):
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(size // 2)


def test_truncated_final_weights(tmp_path):
    wd = str(tmp_path / "wd")
    _workdir(wd)
    _truncate(workdir_lib.final_weights_path(wd))
    with pytest.raises(ValueError, match=r"model.weights.h5: cannot load these weights .*truncated.*rerun wsol-train") as e:
        workdir_lib.load_model(wd)
    assert "\n" not in str(e.value)


def test_truncated_checkpoint(tmp_path):
    wd = str(tmp_path / "wd")
    model, _ = _workdir(wd)
    checkpoint = workdir_lib.AtomicCheckpoint(wd)
    checkpoint.set_model(model)
    checkpoint.on_epoch_end(0)
    _truncate(os.path.join(wd, "checkpoints", "epoch-1.weights.h5"))
    with pytest.raises(ValueError, match=r"epoch-1.weights.h5: cannot load .*remove .*checkpoints to restart"):
        workdir_lib.restore_checkpoint(wd, model)


def test_garbage_history_row_names_the_line(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("epoch,loss\n0,1.5\n\x00garbage,??\n2,0.3\n")
    with pytest.raises(ValueError, match=r"history.csv:3: not a history row \(epoch column 'epoch': '\\x00garbage'\)"):
        workdir_lib.truncate_history(str(path), 2)


def test_export_of_an_unevaluated_workdir_is_a_user_error(tmp_path):
    wd = str(tmp_path / "wd")
    _workdir(wd)  # as wsol-train --noevaluate leaves it: no evaluation record
    with pytest.raises(cli.USER_ERRORS, match="Write one with: *\n *wsol-eval --workdir="):
        saved_model_lib.export_saved_model(wd, str(tmp_path / "out"))
