"""The workdir: effective config, atomic checkpoints, and reloading a model.

A workdir is self-describing: `config.json` holds the experiment config and
the data's class names, so `wsol-eval` and `wsol-export` rebuild the model
with `models.registry.build_model` and load `model.weights.h5` (the Model Garden way;
no pickled Python objects).  Every file is written to a temporary name in
the same directory and renamed, so an interrupted run never leaves a
half-written checkpoint or config behind.
"""

import json
import os
import tempfile

from absl import logging
import keras
import ml_collections

from wsol_keras import temp_files
from wsol_keras.models.registry import build_model

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.weights.h5"
CHECKPOINT_DIR = "checkpoints"


def final_weights_path(workdir):
    return os.path.join(workdir, WEIGHTS_FILE)


def _atomic_write(path, write_fn, suffix=""):
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    # Our own temporary name (pid, host): `temp_files.remove_orphans` can tell
    # a killed run's leftover from a write in progress.
    fd, tmp = tempfile.mkstemp(
        dir=directory,
        prefix=temp_files.temp_prefix(),
        suffix=suffix or os.path.basename(path),
    )
    os.close(fd)
    try:
        write_fn(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_json_atomic(path, obj):
    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=2, sort_keys=True)

    _atomic_write(path, write, suffix=".json")


def save_weights_atomic(model, path):
    # Keras requires the .weights.h5 suffix on the temporary name too.
    _atomic_write(path, model.save_weights, suffix=".weights.h5")


def write_config(workdir, config, data_info):
    os.makedirs(workdir, exist_ok=True)
    write_json_atomic(
        os.path.join(workdir, CONFIG_FILE),
        {"config": config.to_dict(), "data_info": data_info},
    )


def read_config(workdir):
    """Returns (ConfigDict, data_info) from `workdir/config.json`."""
    path = os.path.join(workdir, CONFIG_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"{path} not found: is {workdir!r} a wsol-train " "workdir?"
        )
    with open(path) as f:
        try:
            payload = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON ({e})") from e
    for key in ("config", "data_info"):
        if key not in payload:
            raise ValueError(f"{path}: missing field {key!r}")
    config = ml_collections.ConfigDict(_tuples(payload["config"]))
    return config, payload["data_info"]


def _tuples(obj):
    """JSON turns tuples into lists; configs use tuples for fixed sequences."""
    if isinstance(obj, dict):
        return {k: _tuples(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return tuple(_tuples(v) for v in obj)
    return obj


class AtomicCheckpoint(keras.callbacks.Callback):
    """Saves weights and the finished epoch count after every epoch, atomically."""

    def __init__(self, workdir):
        super().__init__()
        self.directory = os.path.join(workdir, CHECKPOINT_DIR)

    def on_epoch_end(self, epoch, logs=None):
        save_weights_atomic(self.model, os.path.join(self.directory, "last.weights.h5"))
        write_json_atomic(
            os.path.join(self.directory, "last.json"), {"epochs_done": epoch + 1}
        )


def restore_checkpoint(workdir, model):
    """Loads the last epoch checkpoint if one exists; returns epochs done."""
    meta = os.path.join(workdir, CHECKPOINT_DIR, "last.json")
    weights = os.path.join(workdir, CHECKPOINT_DIR, "last.weights.h5")
    if not (os.path.exists(meta) and os.path.exists(weights)):
        return 0
    with open(meta) as f:
        epochs_done = int(json.load(f)["epochs_done"])
    model.load_weights(weights)
    logging.info("resumed from %s after %d epoch(s)", weights, epochs_done)
    return epochs_done


def load_model(workdir, config_overrides=None):
    """Rebuilds the workdir's model and loads its final weights.

    Returns:
        (model, config, data_info).
    """
    config, data_info = read_config(workdir)
    if config_overrides:
        config.update(config_overrides)
    weights = final_weights_path(workdir)
    if not os.path.exists(weights):
        raise FileNotFoundError(
            f"{weights} not found: training in {workdir!r} " "did not finish"
        )
    model = build_model(config, data_info)  # no optimizer: inference only
    model.load_weights(weights)
    return model, config, data_info
