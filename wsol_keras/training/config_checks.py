"""Allowed ranges of the config's numeric fields, checked before a run writes anything.

One table (field -> kind and range) and one entry point, :func:`check_config`,
called first thing by training and by evaluation. Without it a learning rate of 0
or NaN "trains" and exits 0, ``epochs=0`` writes an untrained model, and
``batch_size=0`` ends in a ZeroDivisionError (negative: "Dimension -4 must be >= 0").
"""

from __future__ import annotations

import math
from typing import NamedTuple, Optional

from wsol_keras.localization.maps import MAP_METHODS


class Range(NamedTuple):
    """``kind`` "int" or "float"; bounds inclusive unless ``*_open``; None = unbounded."""

    kind: str
    low: Optional[float] = None
    high: Optional[float] = None
    low_open: bool = False
    high_open: bool = False
    optional: bool = False  # None allowed (e.g. "choose on val")


_POSITIVE = Range("float", 0.0, None, low_open=True)
_NONNEG = Range("float", 0.0)

# field path -> allowed range. Fields missing from a config are skipped, so an
# experiment that drops a section still passes.
FIELDS = {
    "seed": Range("int"),
    "data.image_size": Range("int", 1),
    "data.val_per_class": Range("int", 1),
    "train.epochs": Range("int", 1),
    "train.batch_size": Range("int", 1),
    "train.learning_rate": _POSITIVE,
    "train.momentum": Range("float", 0.0, 1.0, high_open=True),
    "train.weight_decay": _NONNEG,
    "train.lr_decay_epochs": Range("int", 1),
    "train.lr_decay_factor": Range("float", 0.0, 1.0, low_open=True),
    "train.warmup_epochs": Range("int", 0),
    "train.head_lr_multiplier": _POSITIVE,
    "train.crop_scale": Range("float", 1.0),
    "train.steps_per_epoch": Range("int", 1, optional=True),
    "train.log_every_steps": Range("int", 1),
    "train.val_localization_every": Range("int", 0),
    "train.val_localization_max_images": Range("int", 1, optional=True),
    "train.val_localization_images": Range("int", 0),
    "eval.batch_size": Range("int", 1),
    "eval.cam_threshold": Range("float", 0.0, 1.0, optional=True),
    "eval.cam_threshold_step": Range("float", 0.0, 1.0, low_open=True, high_open=True),
    "eval.topk": Range("int", 1),
    "eval.pointing_tolerance": _NONNEG,
    "eval.num_visualize": Range("int", 0),
    "eval.max_images": Range("int", 1, optional=True),
    "eval.scorecam_channels": Range("int", 1),
}


def _get(config, path):
    node = config
    for part in path.split("."):
        try:
            node = node[part]
        except (KeyError, TypeError, AttributeError):
            return _MISSING
    return node


_MISSING = object()


def _describe(r: Range) -> str:
    lo = "(" if r.low_open else "["
    hi = ")" if r.high_open else "]"
    low = "-inf" if r.low is None else f"{r.low:g}"
    high = "inf" if r.high is None else f"{r.high:g}"
    text = f"{'an integer' if r.kind == 'int' else 'a finite number'} in {lo}{low}, {high}{hi}"
    return text + (" or None" if r.optional else "")


def check_value(path: str, value, r: Range) -> None:
    """Raises ValueError naming ``path`` and ``value`` when it is outside ``r``."""
    if value is None and r.optional:
        return
    bad = isinstance(value, bool) or not isinstance(value, (int, float))
    if not bad and r.kind == "int":
        bad = not float(value).is_integer() if math.isfinite(value) else True
    if not bad:
        v = float(value)
        bad = not math.isfinite(v)
        if r.low is not None:
            bad |= v <= r.low if r.low_open else v < r.low
        if r.high is not None:
            bad |= v >= r.high if r.high_open else v > r.high
    if bad:
        raise ValueError(f"config {path}={value!r} is invalid: must be {_describe(r)}")


def check_config(config) -> None:
    """Validates every field of :data:`FIELDS` present in ``config``,
    ``eval.iou_thresholds`` (integer percents in (0, 100]) and
    ``eval.map_method`` (one of `wsol_keras.localization.maps.MAP_METHODS`).

    Raises:
      ValueError: naming the first bad field and its value.
    """
    for path, r in FIELDS.items():
        value = _get(config, path)
        if value is not _MISSING:
            check_value(path, value, r)
    method = _get(config, "eval.map_method")
    if method is not _MISSING and method not in MAP_METHODS:
        raise ValueError(
            f"config eval.map_method={method!r} is invalid: must be one of "
            f"{', '.join(MAP_METHODS)}"
        )
    ious = _get(config, "eval.iou_thresholds")
    if ious is not _MISSING:
        if not isinstance(ious, (tuple, list)) or not ious:
            raise ValueError(
                f"config eval.iou_thresholds={ious!r} is invalid: must be a "
                "non-empty sequence of integer percents in [1, 100]"
            )
        for d in ious:
            check_value("eval.iou_thresholds", d, Range("int", 1, 100))
