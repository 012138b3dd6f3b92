"""`configs/synthetic_<method>.py:finetune`: every method fine-tuned from the
shipped backbone by the papers' recipe (wsol_keras.configs.base.finetune).

Expected values come from the recipe as the papers' released optimizer
defines it (ACoL / DANet ``get_finetune_optimizer``: pretrained weights lr,
pretrained biases 2 x lr, new layers 10 x lr, new biases 20 x lr; torch
``MultiStepLR`` decays at the start of the named epochs), not from the code.
"""

import json
import os

import keras
import numpy as np
import pytest

from file_modules import load_module
from wsol_keras.models import backbones, pretrained
from wsol_keras.models.registry import build_model
from wsol_keras.training import optimizers
from wsol_keras.training import trainer as train_lib

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
METHODS = ("cam", "spn", "acol", "danet", "slt", "dgl", "has", "adl", "cutmix")
SIZE = 32
INFO = {"num_classes": 8, "image_size": SIZE, "class_names": list("abcdefgh"),
        "hierarchy_sizes": [2, 4]}
SHIPPED = os.path.join(pretrained.PRETRAINED_DIR, pretrained.SHIPPED["small_cnn"])
BASE_RATE = 0.002


def config_of(method, arg):
    path = os.path.join(REPO, "configs", f"synthetic_{method}.py")
    return load_module(f"synthetic_{method}", path).get_config(arg)


def _layers(layer):
    for sub in getattr(layer, "layers", ()):
        yield sub
        yield from _layers(sub)


def _backbones(model):
    """The model's pretrained feature extractors (SLT-Net has three)."""
    names = ("backbone", "regressor_backbone", "classifier_backbone")
    return [getattr(model, n) for n in names if getattr(model, n, None) is not None]


def _is_bias(variable):
    return variable.path.rsplit("/", 1)[-1] in ("bias", "beta")


@pytest.mark.parametrize("method", METHODS)
def test_finetune_arg_sets_the_papers_recipe_and_combines_with_smoke(method):
    scratch = config_of(method, None)
    for arg in ("finetune", "finetune,smoke", "smoke,finetune"):
        c = config_of(method, arg)
        assert c.model.weights == "synthetic"
        assert c.train.optimizer == "sgd_l2" and c.train.momentum == 0.9
        assert c.train.weight_decay == pytest.approx(5e-4)
        # only the regime changes: data, method and evaluation stay the scratch run's
        assert c.method.name == scratch.method.name
        assert c.eval.map_method == scratch.eval.map_method
        assert c.data.image_size == scratch.data.image_size
    smoke = config_of(method, "finetune,smoke")
    assert smoke.train.epochs == 1 and smoke.train.steps_per_epoch == 2
    full = config_of(method, "finetune")
    assert full.train.epochs == scratch.train.epochs  # one budget for both regimes
    if method == "slt":
        # SLT Sec. 4.1: localizer at one low rate; Sec. 3.1: its own classifier run
        assert full.train.learning_rate == pytest.approx(BASE_RATE / 5)
        assert full.train.lr_schedule == "constant"
        assert full.train.head_lr_multiplier == 1.0 == full.train.bias_lr_multiplier
        cls = full.method.classifier_train
        assert cls.epochs == full.train.epochs and cls.learning_rate == BASE_RATE
        assert (cls.head_lr_multiplier, cls.bias_lr_multiplier) == (10.0, 2.0)
        assert tuple(cls.lr_decay_at_epochs) == (8, 10) and cls.lr_schedule == "step"
    else:
        assert full.train.learning_rate == pytest.approx(BASE_RATE)
        assert (full.train.head_lr_multiplier, full.train.bias_lr_multiplier) == (10.0, 2.0)
        assert tuple(full.train.lr_decay_at_epochs) == (8, 10)
    # from scratch is still the default experiment
    assert scratch.model.weights is None and scratch.train.optimizer == "adam"


def test_finetune_shares_one_budget_and_dgl_trains_the_cam_run():
    budgets = {
        m: (c.train.epochs, c.train.batch_size, c.seed, c.data.synthetic.num_train)
        for m in METHODS
        for c in [config_of(m, "finetune")]
    }
    assert len(set(budgets.values())) == 1, budgets
    cam, dgl = config_of("cam", "finetune"), config_of("dgl", "finetune")
    assert cam.train.to_dict() == dgl.train.to_dict()
    assert cam.model.to_dict() == dgl.model.to_dict()
    assert cam.method.to_dict() == dgl.method.to_dict()


def test_a_misspelt_config_argument_is_refused():
    with pytest.raises(ValueError, match="did you mean 'finetune'"):
        config_of("cam", "fintune")
    with pytest.raises(ValueError, match="'big' is not one of"):
        config_of("spn", "smoke,big")


def _build(config, seed=0):
    keras.utils.set_random_seed(seed)
    config.data.image_size = SIZE
    return build_model(config, INFO)


@pytest.mark.parametrize("method", METHODS)
def test_finetune_model_loads_the_backbone_keeps_fresh_heads_and_lr_groups(method):
    config = config_of(method, "finetune,smoke")
    model = _build(config)
    scratch_config = config_of(method, "finetune,smoke")
    scratch_config.model.weights = "none"  # the documented way back
    scratch = _build(scratch_config)

    raw = backbones.BACKBONES["small_cnn"].constructor((SIZE, SIZE, 3), SHIPPED)
    want = {l.name: l.get_weights() for l in raw.layers if l.get_weights()}
    nets = _backbones(model)
    for net in nets:
        found = {l.name: l for l in _layers(net) if l.name in want}
        assert set(found) == set(want), (method, sorted(set(want) - set(found)))
        for name, layer in found.items():
            for got, expected in zip(layer.get_weights(), want[name]):
                np.testing.assert_array_equal(got, expected)
    backbone_ids = {id(v) for net in nets for v in net.weights}
    # heads fresh: the same initial values as the random-init run of the same seed
    fresh = [(a, b) for a, b in zip(model.weights, scratch.weights)
             if id(a) not in backbone_ids]
    assert fresh, method
    for a, b in fresh:
        assert a.path == b.path
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    # ... and weights=none really starts the backbone from random values
    scratch_backbone = [v for v in scratch.weights
                        if v.path.endswith("stage1_conv1/kernel")][0]
    assert not np.allclose(scratch_backbone.numpy(),
                           want["stage1_conv1"][0])

    optimizer = optimizers.make_optimizer(config, 5, model)
    optimizer.build(model.trainable_variables)
    localizer_rate = 1.0 if method == "slt" else None
    for v in model.trainable_variables:
        new = id(v) not in backbone_ids
        if localizer_rate is not None:  # SLT Sec. 4.1: one rate, no groups
            want_rate = localizer_rate
        else:
            want_rate = (10.0 if new else 1.0) * (2.0 if _is_bias(v) else 1.0)
        assert optimizer.multiplier_of(v) == pytest.approx(want_rate), (method, v.path)
    assert any(_is_bias(v) for v in model.trainable_variables)


def test_finetune_step_schedule_decays_at_epochs_8_and_10():
    config = config_of("cam", "finetune")
    config.data.image_size = SIZE
    model = build_model(config, INFO)
    steps = 5
    schedule = optimizers.make_optimizer(config, steps, model)._learning_rate
    # torch MultiStepLR stepped per epoch: epoch e runs wholly at its rate
    for epoch, rate in ((0, 2e-3), (7, 2e-3), (8, 2e-4), (9, 2e-4), (10, 2e-5), (11, 2e-5)):
        for step in (epoch * steps, epoch * steps + steps - 1):
            assert float(schedule(step)) == pytest.approx(rate, rel=1e-6), (epoch, step)


def test_cam_finetune_smoke_trains_one_epoch_from_the_shipped_weights(tmp_path):
    config = config_of("cam", "finetune,smoke")
    wd = str(tmp_path / "run")
    model, _, _ = train_lib.train(config, wd)
    with open(os.path.join(wd, "config.json")) as f:
        saved = json.load(f)["config"]
    assert saved["model"]["weights"] == "synthetic"
    assert saved["train"]["optimizer"] == "sgd_l2"
    with open(os.path.join(wd, "history.csv")) as f:
        rows = f.read().strip().splitlines()
    header = rows[0].split(",")
    last = dict(zip(header, rows[-1].split(",")))
    assert int(last["epoch"]) == 0 and np.isfinite(float(last["loss"]))
    # the backbone moved away from the shipped weights (it was trained, at 1x)
    raw = backbones.BACKBONES["small_cnn"].constructor((64, 64, 3), SHIPPED)
    layer = [l for l in _layers(model.backbone) if l.name == "stage1_conv1"][0]
    shipped = raw.get_layer("stage1_conv1").get_weights()[0]
    moved = np.abs(layer.get_weights()[0] - shipped).max()
    assert 0 < moved < 0.1 * np.abs(shipped).max()
