"""Every config in configs/ loads, names a registered method, and keeps the papers' CUB setting."""

import glob
import importlib.util
import os

import pytest

from wsol_keras import config_base
from wsol_keras import methods

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = sorted(
    p
    for p in glob.glob(os.path.join(REPO, "configs", "*.py"))
    if not p.endswith("__init__.py")
)


def load(path, arg=None):
    spec = importlib.util.spec_from_file_location(os.path.basename(path)[:-3], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg)


def test_every_method_has_a_synthetic_and_a_cub_config():
    names = {os.path.basename(p)[:-3] for p in CONFIGS}
    for m in methods.METHODS:
        assert f"synthetic_{m}" in names and f"cub_vgg16_{m}" in names, m


@pytest.mark.parametrize("path", CONFIGS, ids=os.path.basename)
def test_config_loads_and_names_a_registered_method(path):
    for arg in (None, "smoke"):
        config = load(path, arg)
        assert config.method.name in methods.METHODS
        assert config.data.name in ("synthetic", "cub", "wsol_metadata")


@pytest.mark.parametrize(
    "path", [p for p in CONFIGS if "cub_vgg16" in p], ids=os.path.basename
)
def test_cub_configs_use_the_papers_input_and_optimizer(path):
    config = load(path)
    assert config.data.name == "cub" and config.data.image_size == 224
    assert config.model.backbone == "vgg16" and config.model.weights == "imagenet"
    assert config.train.crop_scale == pytest.approx(256 / 224)
    assert config.train.optimizer == "sgd_l2" and config.train.momentum == 0.9
    assert config.train.weight_decay == pytest.approx(5e-4)


def test_synthetic_configs_share_one_budget():
    budgets = set()
    for path in [p for p in CONFIGS if "synthetic_" in p]:
        c = load(path)
        budgets.add(
            (
                c.model.backbone,
                c.train.epochs,
                c.train.batch_size,
                c.seed,
                c.train.learning_rate,
                c.data.synthetic.num_train,
            )
        )
    assert len(budgets) == 1, budgets


def test_a_misspelt_field_raises_instead_of_being_ignored():
    config = config_base.base_config()
    with pytest.raises(AttributeError):
        config.train.resize_size = 256
