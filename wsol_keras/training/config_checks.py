"""Every config check, run before a run writes anything.

Tables of the numeric fields' ranges (:data:`FIELDS`) and the named options'
choices (:data:`CHOICES`, with a "did you mean" suggestion), and cross-field
rules, checked by :func:`check_config` first thing in training and evaluation;
:func:`check_run` then checks what needs the data and the built model (empty
splits, a readable first example, ``eval.topk`` against the classes, the map
method and its layer) before training writes its first file, so a corrected
rerun finds an untouched workdir. Without it a learning rate of 0
or NaN "trains" and exits 0, ``epochs=0`` writes an untrained model, and
``batch_size=0`` ends in a ZeroDivisionError (negative: "Dimension -4 must be >= 0").
"""

from __future__ import annotations

import difflib
import math
from typing import NamedTuple, Optional

from wsol_keras.evaluation import protocol
from wsol_keras.localization import maps
from wsol_keras.localization import primitives
from wsol_keras.training import precision


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
    "train.precise_bn_batches": Range("int", 0),
    "eval.batch_size": Range("int", 1),
    "eval.cam_threshold": Range("float", 0.0, 1.0, optional=True),
    "eval.cam_threshold_step": Range("float", 0.0, 1.0, low_open=True, high_open=True),
    "eval.topk": Range("int", 1),
    "eval.pointing_tolerance": _NONNEG,
    "eval.num_visualize": Range("int", 0),
    "eval.max_images": Range("int", 1, optional=True),
    "eval.scorecam_channels": Range("int", 1),
}


# field path -> allowed values (strings).
CHOICES = {
    "eval.map_method": maps.MAP_METHODS,
    "eval.upsample": primitives.UPSAMPLE_METHODS,
    "eval.box_method": protocol.BOX_METHODS,
    "eval.image_size_mode": protocol.IMAGE_SIZE_MODES,
    "train.lr_schedule": ("cosine", "step", "constant"),
    "train.precision": precision.PRECISIONS,
    "train.checkpoint_selection": ("last", "best"),
}


def check_choice(path, value, choices):
    """Raises ValueError naming ``path``, ``value``, the closest choice and all."""
    if value in choices:
        return
    close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise ValueError(
        f"config {path}={value!r} is invalid: {hint}expected one of {', '.join(choices)}"
    )


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
    for path, choices in CHOICES.items():
        value = _get(config, path)
        if value is not _MISSING:
            check_choice(path, value, choices)
    warmup, epochs = _get(config, "train.warmup_epochs"), _get(config, "train.epochs")
    if _MISSING not in (warmup, epochs) and warmup > epochs:
        raise ValueError(
            f"config train.warmup_epochs={warmup} is invalid: more than "
            f"train.epochs={epochs} (the warmup would never end)"
        )
    if _get(config, "eval") is not _MISSING and _get(config, "data.image_size") is not _MISSING:
        protocol.check_config(config)
    ious = _get(config, "eval.iou_thresholds")
    if ious is not _MISSING:
        if not isinstance(ious, (tuple, list)) or not ious:
            raise ValueError(
                f"config eval.iou_thresholds={ious!r} is invalid: must be a "
                "non-empty sequence of integer percents in [1, 100]"
            )
        for d in ious:
            check_value("eval.iou_thresholds", d, Range("int", 1, 100))


def model_build_error(config, error):
    """A ValueError naming the fields a model that fails to build depends on."""
    cause = " ".join(str(error).split())
    cause = cause.replace("\x1b[1m", "").replace("\x1b[0m", "")[:300]
    return ValueError(
        f"the model cannot be built with data.image_size={_get(config, 'data.image_size')!r} "
        f"and model.backbone={_get(config, 'model.backbone')!r} (too small an image "
        f"for the backbone's downsampling?): {cause}"
    )


def check_run(config, source, model, splits):
    """The checks that need the data and the built model; reads only.

    Args:
        config: the run's config (`check_config` passed).
        source: its `data.DataSource`.
        model: the built model.
        splits: the splits the run reads ("train", "val", "test").

    Raises:
        ValueError: naming the field, split or layer.
    """
    for split in splits:
        if split in source.splits and source.num_examples(split) == 0:
            field = f"data.synthetic.num_{split}" if _get(config, "data.name") == "synthetic" else "the data"
            raise ValueError(f"the {split!r} split is empty ({field}); nothing to read")
        if split in source.splits:
            try:  # decode one example: a bad size or file fails here, not mid-run
                next(iter(source.dataset(split).take(1)))
            except (ValueError, OSError, KeyError) as e:
                raise ValueError(f"{split!r} split: {e}") from e
    topk, classes = _get(config, "eval.topk"), int(source.num_classes)
    if topk is not _MISSING and topk > classes:
        raise ValueError(
            f"config eval.topk={topk!r} is invalid: more than the data's {classes} classes"
        )
    if _get(config, "eval.map_method") is not _MISSING:
        try:
            maps.Localizer.from_config(model, config)  # map method, upsample, layer
        except ValueError as e:
            raise ValueError(f"{e} (config eval.*)") from e
