"""Learning-rate groups of `sgd_l2` belong to variables, not to their paths.

SLT-Net holds three backbones built from the same layer names (localizer,
regressor, classifier), so their variables share paths. The paper trains the
localizer at a low rate and the classifier on its own (SLT-Net Sec. 3.1,
Table 5); groups stored by path gave every localizer / regressor variable the
rate of the classifier variable with the same path. Expected rates here are
read from the model's sub-networks (which net a variable belongs to), not
from the model's own multiplier code.
"""

import pytest

from wsol_keras.configs import synthetic_slt
from wsol_keras.training import trainer

SIZE = 32
INFO = {"num_classes": 4, "image_size": SIZE, "class_names": ["a", "b", "c", "d"]}


def _slt_config(**method):
    config = synthetic_slt.get_config("smoke")
    config.data.image_size = SIZE
    config.train.optimizer = "sgd_l2"
    config.train.head_lr_multiplier = 10.0
    config.train.bias_lr_multiplier = 2.0
    for k, v in method.items():
        config.method[k] = v
    return config


def _is_bias(v):
    return v.path.rsplit("/", 1)[-1] in ("bias", "beta")


def _expected_rate(model, v, cls_rate):
    """SLT-Net groups: localizer / regressor backbones 1x, their new heads
    10x, classifier backbone cls_rate, classifier fc cls_rate x 10; biases 2x."""
    def holds(net):
        return any(v is w for w in net.trainable_variables)

    if holds(model.classifier_backbone):
        rate = cls_rate
    elif holds(model.classifier_fc):
        rate = cls_rate * 10.0
    elif holds(model.backbone) or holds(model.regressor_backbone):
        rate = 1.0
    else:
        rate = 10.0
    return rate * (2.0 if _is_bias(v) else 1.0)


def _optimizer_rates(model):
    # CoupledSGD resolves its groups once, in build, by the index of each
    # variable in the list it was built with (model.trainable_variables).
    return list(model.optimizer._multipliers)


def test_joint_classifier_rate_stays_on_the_classifier():
    model = trainer.build_compiled_model(_slt_config(classifier_lr_multiplier=5.0), INFO)
    variables = model.trainable_variables
    paths = [v.path for v in variables]
    assert len(set(paths)) < len(paths)  # the test can fail: paths are shared
    got = _optimizer_rates(model)
    wrong = [
        (v.path, r, _expected_rate(model, v, 5.0))
        for v, r in zip(variables, got)
        if r != pytest.approx(_expected_rate(model, v, 5.0))
    ]
    assert not wrong, f"{len(wrong)} variables on another group's rate: {wrong[:4]}"


def test_loaded_classifier_leaves_localizer_and_regressor_rates(tmp_path):
    from tests.models.test_slt_independent_classifier import _cam_workdir
    from wsol_keras.models import phases as method_phases

    _cam_workdir(tmp_path / "cam", info=INFO)
    config = _slt_config(classifier_weights=str(tmp_path / "cam"))
    model = trainer.build_compiled_model(config, INFO)
    method_phases.prepare(model, config, INFO)
    assert not model.classifier_backbone.trainable
    variables = model.trainable_variables
    got = _optimizer_rates(model)
    assert len(got) == len(variables)
    for v, r in zip(variables, got):
        assert r == pytest.approx(_expected_rate(model, v, 1.0)), v.path
