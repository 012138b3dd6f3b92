"""Backbone weights pretrained on the procedural set, and their manifests.

`config.model.weights = "synthetic"` loads, for its backbone, the file shipped
in ``wsol_keras/models/pretrained/`` (written by
``wsol-train --config=configs/pretrain_<backbone>.py``, see
:mod:`wsol_keras.data.pretrain_source`) exactly the way ``"imagenet"`` loads
Keras' weights: into the network without its top, by layer name; every head
a method adds starts fresh.  A path to a user's own pretraining output
(``<workdir>/backbone.weights.h5``) is loaded the same way; the manifest
written next to it (``backbone.json``) names the backbone it belongs to, and a
file of another backbone is refused naming both.

The manifest also records the features of a fixed input (`probe_images`), so
a loaded file can be checked against the run that wrote it.

`normalize_weights` and `is_download_failure` read a `config.model.weights`
value and a failed ImageNet download for every backbone builder.
"""

import json
import os

import numpy as np

PRETRAINED_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pretrained")
# backbone -> shipped weights file in PRETRAINED_DIR (manifest: same stem, .json)
SHIPPED = {"small_cnn": "small_cnn_synthetic.weights.h5"}
WEIGHTS_SUFFIX = ".weights.h5"
PROBE_KIND = "sin-grid-v1"


def manifest_path(weights_path):
    """The manifest beside a weights file: ``x.weights.h5`` -> ``x.json``."""
    path = str(weights_path)
    stem = path[: -len(WEIGHTS_SUFFIX)] if path.endswith(WEIGHTS_SUFFIX) else path
    return stem + ".json"


def read_manifest(weights_path):
    """The manifest dict beside `weights_path`, or None when there is none."""
    path = manifest_path(weights_path)
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: unreadable pretraining manifest ({e})") from e


def resolve_weights(backbone, weights):
    """The weights argument for `backbone`'s constructor.

    Args:
        backbone: a backbone name (`backbones.BACKBONES` key).
        weights: "synthetic" (the shipped file of `backbone`), a path, or
            anything else (returned unchanged: None, "imagenet").

    Raises:
        ValueError: no shipped file for `backbone`, or the manifest beside the
            file names another backbone.
    """
    if weights == "synthetic":
        if backbone not in SHIPPED:
            raise ValueError(
                f"config.model.weights='synthetic': backbone {backbone!r} has no "
                f"weights pretrained on the procedural set (shipped: "
                f"{sorted(SHIPPED)}); pretrain one with "
                f"configs/pretrain_small_cnn.py --config.model.backbone={backbone}"
            )
        weights = os.path.join(PRETRAINED_DIR, SHIPPED[backbone])
        if not os.path.exists(weights):
            raise FileNotFoundError(f"shipped backbone weights missing: {weights}")
    if not isinstance(weights, str) or weights == "imagenet":
        return weights
    manifest = read_manifest(weights)
    if manifest is not None and manifest.get("backbone") != backbone:
        raise ValueError(
            f"config.model.weights={weights!r} holds backbone "
            f"{manifest.get('backbone')!r} (per {manifest_path(weights)}), but "
            f"config.model.backbone={backbone!r}"
        )
    return weights


def probe_images(image_size, count=2):
    """A fixed input: float32 [count, S, S, 3] in [0, 255], closed form.

    Image k, pixel (y, x), channel c: 127.5 + 127.5 sin(2 pi ((k+1)(x+1)/S
    + (c+1) y / S) + c).  Independent of any random generator or library
    version, so a manifest's recorded features stay checkable.
    """
    s = int(image_size)
    k = np.arange(count, dtype=np.float64)[:, None, None, None]
    y = np.arange(s, dtype=np.float64)[None, :, None, None]
    x = np.arange(s, dtype=np.float64)[None, None, :, None]
    c = np.arange(3, dtype=np.float64)[None, None, None, :]
    v = 127.5 + 127.5 * np.sin(2 * np.pi * ((k + 1) * (x + 1) / s + (c + 1) * y / s) + c)
    return v.astype(np.float32)


def probe_features(backbone_model, image_size):
    """float64 [2, C]: the spatial mean of `backbone_model`'s features on
    `probe_images` (inference mode)."""
    features = np.asarray(backbone_model(probe_images(image_size), training=False))
    return features.mean(axis=(1, 2)).astype(np.float64)


# Spellings of "no pretrained weights" (config fields are strings on the
# command line: --config.model.weights=None arrives as "None").
_NO_WEIGHTS = ("", "none", "null", "random", "scratch")


def normalize_weights(weights):
    """None for "no weights" (None, "None", "none", "", ...), else unchanged."""
    if weights is None:
        return None
    if isinstance(weights, str) and weights.strip().lower() in _NO_WEIGHTS:
        return None
    return weights


def is_download_failure(error):
    """Whether `error` (or its cause) is a failed download (offline, DNS, HTTP)."""
    # keras.utils.get_file raises Exception("URL fetch failure on ...") wrapping
    # urllib's URLError / HTTPError; socket errors come through as OSError.
    import urllib.error  # pylint: disable=g-import-not-at-top

    seen, e = 0, error
    while e is not None and seen < 5:
        if isinstance(e, (urllib.error.URLError, ConnectionError, TimeoutError)):
            return True
        if "URL fetch failure" in str(e) or "url fetch failure" in str(e).lower():
            return True
        e, seen = e.__cause__ or e.__context__, seen + 1
    return False
