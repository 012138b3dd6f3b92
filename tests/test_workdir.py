"""workdir.py: config round trip, atomic writes, resume, clear errors."""

import json
import os

import ml_collections
import numpy as np
import pytest

from wsol_keras import workdir


def test_config_round_trip_keeps_tuples(tmp_path):
    config = ml_collections.ConfigDict(
        {"eval": {"iou_thresholds": (30, 50, 70)}, "seed": 3}
    )
    info = {"num_classes": 4, "class_names": ["a", "b", "c", "d"]}
    workdir.write_config(str(tmp_path), config, info)
    back, back_info = workdir.read_config(str(tmp_path))
    assert back.eval.iou_thresholds == (30, 50, 70)
    assert back.seed == 3 and back_info == info


def test_failed_write_leaves_the_old_file_and_no_temp(tmp_path):
    path = str(tmp_path / "m.json")
    workdir.write_json_atomic(path, {"a": 1})

    class Unserializable:
        pass

    with pytest.raises(TypeError):
        workdir.write_json_atomic(path, {"a": Unserializable()})
    with open(path) as f:
        assert json.load(f) == {"a": 1}
    assert sorted(os.listdir(tmp_path)) == ["m.json"]


def test_read_config_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        workdir.read_config(str(tmp_path))
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="config.json"):
        workdir.read_config(str(tmp_path))
    (tmp_path / "config.json").write_text('{"config": {}}')
    with pytest.raises(ValueError, match="data_info"):
        workdir.read_config(str(tmp_path))


def test_checkpoint_callback_and_restore(tmp_path):
    import keras

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    cb = workdir.AtomicCheckpoint(str(tmp_path))
    cb.set_model(model)
    cb.on_epoch_end(4)
    fresh = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    assert workdir.restore_checkpoint(str(tmp_path), fresh) == 5
    x = np.ones((1, 3), np.float32)
    np.testing.assert_allclose(model(x), fresh(x))
    leftovers = [
        f for f in os.listdir(tmp_path / "checkpoints") if f.startswith(".tmp")
    ]
    assert leftovers == []
