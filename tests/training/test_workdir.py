"""workdir.py: config round trip, atomic writes, resume, clear errors."""

import json
import os

import ml_collections
import numpy as np
import pytest

from wsol_keras.training import workdir
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


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_written_files_follow_the_umask(tmp_path, umask_022):
    import keras

    info = {"num_classes": 1, "class_names": ["a"]}
    workdir.write_config(str(tmp_path), ml_collections.ConfigDict({"seed": 0}), info)
    workdir.write_json_atomic(str(tmp_path / "metrics.json"), {"a": 1})
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    workdir.save_weights_atomic(model, str(tmp_path / "model.weights.h5"))
    for name in ("config.json", "metrics.json", "model.weights.h5"):
        assert os.stat(tmp_path / name).st_mode & 0o777 == 0o644, name
    os.umask(0o077)
    workdir.write_json_atomic(str(tmp_path / "private.json"), {"a": 1})
    assert os.stat(tmp_path / "private.json").st_mode & 0o777 == 0o600


def test_rerun_config_check_names_every_changed_field(tmp_path):
    def config(lr, epochs, num_visualize):
        return ml_collections.ConfigDict(
            {
                "seed": 0,
                "train": {"learning_rate": lr, "epochs": epochs},
                "eval": {"num_visualize": num_visualize},
            }
        )

    info = {"num_classes": 2, "class_names": ["a", "b"]}
    wd = str(tmp_path)
    assert workdir.check_rerun_config(wd, config(0.1, 3, 4), info) == []  # no workdir yet
    workdir.write_config(wd, config(0.1, 3, 4), info)
    before = (tmp_path / "config.json").read_text()
    assert workdir.check_rerun_config(wd, config(0.1, 3, 4), info) == []
    # An evaluation-only field may change.
    assert workdir.check_rerun_config(wd, config(0.1, 3, 9), info) == [
        ("config.eval.num_visualize", 4, 9)
    ]
    with pytest.raises(ValueError) as e:
        workdir.check_rerun_config(
            wd, config(0.5, 7, 4), {"num_classes": 2, "class_names": ["a", "c"]}
        )
    msg = str(e.value)
    assert "config.train.learning_rate: 0.1 -> 0.5" in msg
    assert "config.train.epochs: 3 -> 7" in msg
    assert "data_info.class_names: ['a', 'b'] -> ['a', 'c']" in msg
    assert "--allow_config_change" in msg and "num_visualize" not in msg
    assert (tmp_path / "config.json").read_text() == before
    changes = workdir.check_rerun_config(
        wd, config(0.5, 3, 4), info, allow_change=True
    )
    assert changes == [("config.train.learning_rate", 0.1, 0.5)]
    workdir.write_config(wd, config(0.5, 3, 4), info, keep_previous=True)
    previous = [f for f in os.listdir(tmp_path) if f.startswith("config.previous-")]
    assert len(previous) == 1
    assert (tmp_path / previous[0]).read_text() == before


def test_truncate_history_keeps_epochs_before_the_checkpoint(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("epoch,loss\n0,2.0\n1,1.5\n2,1.2\n")
    workdir.truncate_history(str(path), 2)
    assert path.read_text().splitlines() == ["epoch,loss", "0,2.0", "1,1.5"]


def test_checkpoint_restores_the_random_state_of_layers(tmp_path):
    import keras

    def model():
        return keras.Sequential(
            [keras.Input((64,)), keras.layers.Dropout(0.5, seed=1), keras.layers.Dense(2)]
        )

    x = np.ones((4, 64), np.float32)
    trained = model()
    trained.compile(optimizer="sgd")
    for _ in range(3):  # advances the dropout's SeedGenerator
        trained(x, training=True)
    cb = workdir.AtomicCheckpoint(str(tmp_path))
    cb.set_model(trained)
    cb.on_epoch_end(0)
    fresh = model()
    fresh.compile(optimizer="sgd")
    assert workdir.restore_checkpoint(str(tmp_path), fresh) == 1
    dropped = lambda m: np.asarray(m.layers[0](x, training=True)) == 0  # noqa: E731
    np.testing.assert_array_equal(dropped(fresh), dropped(trained))
