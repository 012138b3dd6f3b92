"""The backbone of a finished run as a pretrained-weights file and manifest.

With ``config.train.export_backbone = True`` (``configs/pretrain_*.py``),
wsol-train ends by writing into the workdir

* ``backbone.weights.h5``: the backbone's network without its top (the
  layers `build_backbone` takes from the constructor, no preprocessing
  layer, no head), the file form ``config.model.weights`` loads by layer
  name, as it loads Keras' ImageNet files;
* ``backbone.json``: the manifest (`wsol_keras.models.pretrained`): backbone,
  sha256 and size of the file, val Top-1 of the final model, wall time, the
  command, the effective config, the machine, and the features and logits of
  the fixed probe input.

Any method's run can export; nothing here depends on which one trained.
"""

import hashlib
import json
import os
import platform
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from wsol_keras.models import backbones as backbones_lib
from wsol_keras.models import pretrained
from wsol_keras.training import workdir as workdir_lib

WEIGHTS_NAME = "backbone" + pretrained.WEIGHTS_SUFFIX


def sha256_of(path):
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def raw_network(model, backbone_name, image_size):
    """A fresh constructor network of `backbone_name` holding `model`'s
    backbone weights, copied layer by layer by name."""
    spec = backbones_lib.BACKBONES[backbone_name]
    raw = spec.constructor((image_size, image_size, 3), None)
    trained = {}
    stack = [model.backbone]
    while stack:
        layer = stack.pop()
        if isinstance(layer, keras.Model):
            stack.extend(layer.layers)
        elif layer.weights:
            trained[layer.name] = layer
    for layer in raw.layers:
        if not layer.weights:
            continue
        if layer.name not in trained:
            raise ValueError(
                f"export_backbone: layer {layer.name!r} of backbone "
                f"{backbone_name!r} is not in the trained model"
            )
        layer.set_weights(trained[layer.name].get_weights())
    return raw


def _machine():
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
    }


def val_top1(model, source, batch_size):
    """Top-1 accuracy of `model` on `source`'s val split (None without one)."""
    if "val" not in source.splits:
        return None
    correct = total = 0
    for batch in source.dataset("val").batch(batch_size).as_numpy_iterator():
        image = batch["image"].astype(np.float32)
        logits = np.asarray(model(image, training=False)["logits"])
        correct += int((logits.argmax(-1) == batch["label"]).sum())
        total += len(batch["label"])
    return correct / max(total, 1)


def export(model, source, config, workdir, wall_time_s, resumed_at_epoch=0, command=None):
    """Writes ``backbone.weights.h5`` and ``backbone.json`` into `workdir`.

    Args:
        model: the trained model (final weights, after precise BN).
        source: its data source (class count and names go in the manifest).
        config: the run's config.
        workdir: where to write (temporary names, then renamed).
        wall_time_s: seconds the invocation that finished the run took.
        resumed_at_epoch: the epoch that invocation started from (0: the
            whole run, and `wall_time_s` its wall time).
        command: the command line (default: `sys.argv`).

    Returns:
        The manifest dict.
    """
    name = config.model.backbone
    size = int(config.data.image_size)
    raw = raw_network(model, name, size)
    weights_path = os.path.join(workdir, WEIGHTS_NAME)
    workdir_lib.atomic_write(weights_path, raw.save_weights, suffix=pretrained.WEIGHTS_SUFFIX)
    top1 = val_top1(model, source, int(config.eval.batch_size))
    probe = pretrained.probe_images(size)
    reloaded = backbones_lib.build_backbone(name, size, weights=weights_path)
    manifest = {
        "backbone": name,
        "weights_file": WEIGHTS_NAME,
        "sha256": sha256_of(weights_path),
        "size_bytes": os.path.getsize(weights_path),
        "data": config.data.name,
        "image_size": size,
        "num_classes": source.num_classes,
        "val_top1": top1,
        "wall_time_s": round(float(wall_time_s), 1),
        "resumed_at_epoch": int(resumed_at_epoch),
        "epochs": int(config.train.epochs),
        "command": " ".join(command if command is not None else sys.argv),
        "machine": _machine(),
        "created_unix": int(time.time()),
        "probe": {
            "kind": pretrained.PROBE_KIND,
            "image_size": size,
            "features": pretrained.probe_features(reloaded, size).tolist(),
            "logits": np.asarray(model(probe, training=False)["logits"])
            .astype(np.float64)
            .tolist(),
        },
        "config": json.loads(config.to_json_best_effort()),
    }
    path = pretrained.manifest_path(weights_path)

    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(manifest, f, indent=1)

    workdir_lib.atomic_write(path, write, suffix=".json")
    return manifest
