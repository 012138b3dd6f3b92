"""models/registry.py: config.method is the model constructor's keyword arguments."""

import inspect

import ml_collections
import numpy as np
import pytest

from wsol_keras.configs import synthetic_cam
from wsol_keras.models import registry
from wsol_keras.models.registry import METHODS, build_model, default_method_config

SIZE = 32
DATA_INFO = {
    "num_classes": 8,
    "class_names": [f"c{i}" for i in range(8)],
    "hierarchy_sizes": [4, 2],
    "ancestors": [[i // 2, i // 4] for i in range(8)],
    "image_size": SIZE,
}


def config_for(method, **fields):
    config = synthetic_cam.get_config("smoke")
    config.data.image_size = SIZE
    config.method = default_method_config(method)
    for name, value in fields.items():
        config.method[name] = value
    return config


@pytest.mark.parametrize("method", sorted(METHODS))
def test_default_section_is_the_constructors_defaults(method):
    section = default_method_config(method)
    params = inspect.signature(METHODS[method]).parameters
    assert section.name == method
    for field in section.keys():
        if field == "name":
            continue
        default = params[field].default
        value = section[field]
        if isinstance(value, ml_collections.ConfigDict):
            value = value.to_dict()
            default = dict(default)
        assert value == default, field
    # Wiring arguments (backbones, classes, data context) are not config fields.
    for wiring in ("backbone", "num_classes", "hierarchy_sizes", "ancestors", "seed"):
        assert wiring not in section


def test_unknown_field_names_the_field_and_the_method():
    config = config_for("acol")
    with config.method.unlocked():
        config.method.epsilon = 2.0  # an SPN field, not ACoL's
    with pytest.raises(ValueError, match=r"config\.method\.epsilon.*'acol'"):
        build_model(config, DATA_INFO)


def test_unknown_method_lists_the_registered_ones():
    config = config_for("cam")
    config.method.name = "gradcam++"
    with pytest.raises(ValueError, match=r"'gradcam\+\+'.*acol"):
        build_model(config, DATA_INFO)


def test_none_default_is_a_typed_field_settable_from_the_command_line():
    section = default_method_config("spn")
    assert section.epsilon is None and section.get_type("epsilon") is float
    section.epsilon = 2.1
    with pytest.raises(TypeError):
        section.epsilon = "wide"


@pytest.mark.parametrize(
    "method, fields, check",
    [
        ("cam", {"conv_filters": (4,)}, lambda m: m.head.conv_filters == (4,)),
        ("acol", {"delta": 0.35}, lambda m: m.erase.delta == 0.35),
        (
            "spn",
            {"epsilon": 1.7, "max_iter": 3, "num_maps": 8},
            lambda m: (m.soft_proposal.epsilon, m.soft_proposal.max_iter) == (1.7, 3),
        ),
        ("danet", {"dda_weight": 0.5, "num_maps": 2}, lambda m: m.dda.weight == 0.5),
        (
            "slt",
            {"regressor_hidden": 8, "k": 2},
            lambda m: m.top_k == 2 and m.regressor_fc1.units == 8,
        ),
    ],
)
def test_fields_reach_the_constructor_and_variables_exist(method, fields, check):
    model = build_model(config_for(method, **fields), DATA_INFO)
    assert check(model)
    assert model.built and model.weights  # the dummy call created them


def test_nested_vst_section_and_data_context_reach_the_model():
    config = config_for("slt", regressor_hidden=8, k=2)
    config.method.vst.hue = 0.01
    config.seed = 7
    model = build_model(config, DATA_INFO)
    assert model.transform.hue == 0.01 and model.transform.seed == 7
    assert model.transform.brightness == default_method_config("slt").vst.brightness

    danet = build_model(config_for("danet", num_maps=2), DATA_INFO)
    np.testing.assert_array_equal(danet.ancestors, np.asarray(DATA_INFO["ancestors"]))
    assert danet.num_levels == 3


def test_every_method_has_a_registered_model_class():
    for name, cls in METHODS.items():
        assert registry.model_class(name) is cls
        assert cls.BACKBONE_PREFIXES[0] == "backbone"
