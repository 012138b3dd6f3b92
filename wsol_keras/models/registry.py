"""The METHODS registry and `build_model`: config + data -> a built WSOL model.

`config.method.name` picks a `WSOLModel` subclass; every other `config.method`
field is a keyword argument of its constructor.  The constructor's signature
is the only statement of a method's defaults: `default_method_config` reads
them from it, and `build_model` passes the section back as keyword arguments
(an unknown field raises, naming the field and the method).

Constructor arguments that are not hyperparameters are filled here: the
backbone(s) (`WSOLModel.BACKBONE_PREFIXES`, from `config.model`),
`num_classes`, and `CONTEXT_ARGUMENTS` (from `data_info` and `config.seed`).
`data_info` holds "num_classes", "image_size", "hierarchy_sizes" (classes per
ancestor level, nearest parent first) and optionally "ancestors".
"""

import collections.abc
import inspect
import types
import typing

import ml_collections
import numpy as np

from wsol_keras.models.backbones import backbone_from_config
from wsol_keras.data.method_checks import check_data_for_method
from wsol_keras.models.acol import ACoLModel
from wsol_keras.models.adl import ADLModel
from wsol_keras.models.cam import CAMModel
from wsol_keras.models.classifier import ClassifierModel
from wsol_keras.models.cutmix import CutMixModel
from wsol_keras.models.danet import DANetModel
from wsol_keras.models.has import HaSModel
from wsol_keras.models.slt import SLTModel
from wsol_keras.models.spn import SPNModel

METHODS = {
    "cam": CAMModel,
    "spn": SPNModel,
    "acol": ACoLModel,
    "danet": DANetModel,
    "slt": SLTModel,
    "has": HaSModel,
    "adl": ADLModel,
    "cutmix": CutMixModel,
}
# Models wsol-train builds for a method's own phases, not WSOL methods of
# their own (no config, no export): SLT-Net's phase-1 classifier with VGG16's
# fc head (`wsol_keras.models.slt_classifier_phase`).
INTERNAL_METHODS = {
    "slt_classifier": ClassifierModel,
}

# Constructor arguments that come from the data or the experiment, not from
# config.method: name -> how to read it from (config, data_info).
CONTEXT_ARGUMENTS = {
    "hierarchy_sizes": lambda config, info: tuple(info.get("hierarchy_sizes", ())),
    "ancestors": lambda config, info: info.get("ancestors"),
    "seed": lambda config, info: config.get("seed"),
    # VGG16's ImageNet fc6 / fc7 follow the backbone's ImageNet weights.
    "pretrained_top": lambda config, info: (
        "imagenet" if config.model.get("weights") == "imagenet" else None
    ),
}
# Handled by WSOLModel / build_model itself.
_PLUMBING = {
    "num_classes",
    "loss_names",
    "head_lr_multiplier",
    "head_lr_backbone_prefixes",
    "name",
}


def model_class(name):
    """The `WSOLModel` subclass registered as `name`."""
    if name in INTERNAL_METHODS:
        return INTERNAL_METHODS[name]
    if name not in METHODS:
        raise ValueError(
            f"config.method.name={name!r} is not a registered method; "
            f"choose one of {sorted(METHODS)}"
        )
    return METHODS[name]


def method_parameters(name):
    """{field: inspect.Parameter} of the method's `config.method` fields."""
    cls = model_class(name)
    params = inspect.signature(cls).parameters
    skip = set(cls.BACKBONE_PREFIXES) | set(CONTEXT_ARGUMENTS) | _PLUMBING
    return {
        n: p
        for n, p in params.items()
        if n not in skip
        and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        and p.default is not p.empty
    }


def default_method_config(name):
    """`config.method` of `name` with its constructor's defaults.

    A None default becomes a typed `FieldReference` (from the argument's
    annotation, e.g. `float | None`) so `--config.method.x=...` can set it; a
    mapping default becomes a nested ConfigDict.
    """
    fields = {"name": name}
    for n, p in method_parameters(name).items():
        fields[n] = _config_value(name, n, p)
    return ml_collections.ConfigDict(fields)


def _config_value(method, field, param):
    value = param.default
    if isinstance(value, collections.abc.Mapping):
        return ml_collections.ConfigDict(dict(value))
    if value is not None:
        return value
    annotation = param.annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        types_ = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(types_) == 1:
            return ml_collections.FieldReference(None, field_type=types_[0])
    raise TypeError(
        f"{model_class(method).__name__}.{field}: a None default needs an "
        "annotation such as `float | None` so the config field has a type"
    )


def method_kwargs(method_config):
    """The constructor keyword arguments of a `config.method` section."""
    name = method_config.name
    allowed = method_parameters(name)
    kwargs = {}
    for field in method_config.keys():
        if field == "name":
            continue
        if field not in allowed:
            raise ValueError(
                f"config.method.{field}: not an argument of method {name!r} "
                f"({model_class(name).__name__}); its fields are {sorted(allowed)}"
            )
        value = method_config[field]
        if isinstance(value, ml_collections.ConfigDict):
            value = value.to_dict()
        kwargs[field] = value
    return kwargs


def build_model(config, data_info):
    """Builds the model of `config.method.name` and creates its variables.

    Not compiled (`wsol_keras.training.trainer.build_compiled_model` adds the optimizer);
    ready for `load_weights`.
    """
    cls = model_class(config.method.name)
    check_data_for_method(config, data_info)
    kwargs = method_kwargs(config.method)
    size = int(data_info["image_size"])
    backbones = [
        backbone_from_config(
            config.model, size, levels=cls.BACKBONE_LEVELS, name_prefix=prefix
        )
        for prefix in cls.BACKBONE_PREFIXES
    ]
    params = inspect.signature(cls).parameters
    for n, read in CONTEXT_ARGUMENTS.items():
        if n in params:
            kwargs[n] = read(config, data_info)
    model = cls(
        *backbones,
        data_info["num_classes"],
        head_lr_multiplier=config.train.head_lr_multiplier,
        head_lr_backbone_prefixes=tuple(
            config.train.get("head_lr_backbone_prefixes", ())
        ),
        name=config.method.name,
        **kwargs,
    )
    # One call on a dummy batch creates every variable (load_weights needs them).
    model(
        {
            "image": np.zeros((1, size, size, 3), np.float32),
            "label": np.zeros((1,), np.int32),
            "hierarchy": np.zeros(
                (1, len(data_info.get("hierarchy_sizes", ()))), np.int32
            ),
        },
        training=False,
    )
    return model
