"""A trained model on disk: the file names of a workdir and reading its config.

A workdir is self-describing (`wsol_keras.training.workdir` writes it):
``config.json`` holds the experiment config and the data's class names,
``model.weights.h5`` the final weights.  Reading them needs nothing above
`models`, so a method's own phases (`wsol_keras.models.phases`) can load a
model that another run trained.
"""

import json
import os

import ml_collections

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.weights.h5"


def final_weights_path(workdir):
    """``<workdir>/model.weights.h5``: the weights a finished run wrote."""
    return os.path.join(workdir, WEIGHTS_FILE)


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
