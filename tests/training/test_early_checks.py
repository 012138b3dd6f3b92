"""Every config check runs before the first write: a run refused by one leaves
the workdir untouched, so the corrected rerun is not refused as a config change."""

import os

import pytest

from file_modules import load_module
from wsol_keras.training import config_checks
from wsol_keras.training import trainer

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _config(**fields):
    config = load_module("synthetic_cam", os.path.join(REPO, "configs", "synthetic_cam.py")).get_config("smoke")
    for path, value in fields.items():
        section, _, name = path.rpartition("__")
        node = config
        for part in section.split("__") if section else ():
            node = node[part]
        node[name] = value
    return config


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"train__precise_bn_batches": -1}, r"train.precise_bn_batches=-1 is invalid"),
        ({"eval__box_method": "largest_contur"}, r"eval.box_method='largest_contur' is invalid: did you mean 'largest_contour'"),
        ({"eval__image_size_mode": "foo"}, r"eval.image_size_mode='foo' is invalid.*fixed, original"),
        ({"eval__map_method": "foo"}, r"eval.map_method='foo' is invalid"),
        ({"eval__upsample": "bicubic"}, r"eval.upsample='bicubic' is invalid: did you mean 'cv2_bicubic'"),
        ({"train__warmup_epochs": 3}, r"train.warmup_epochs=3 is invalid: more than train.epochs=1"),
    ],
)
def test_config_field_checks(fields, message):
    with pytest.raises(ValueError, match=message):
        config_checks.check_config(_config(**fields))


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"train__precise_bn_batches": -1}, r"precise_bn_batches=-1"),
        ({"eval__box_method": "foo"}, r"eval.box_method='foo'"),
        ({"data__image_size": 7}, r"image_size must be >= 16"),
        ({"data__image_size": 1}, r"the model cannot be built with data.image_size=1 and model.backbone='small_cnn'"),
        ({"eval__map_method": "dgl", "eval__dgl_layer": "backbone/nope"}, r"nope"),
        ({"eval__topk": 1000}, r"eval.topk=1000 is invalid: more than the data's \d+ classes"),
        ({"data__synthetic__num_test": 0}, r"'test' split is empty \(data.synthetic.num_test\)"),
    ],
)
def test_run_refused_before_writing_anything(tmp_path, fields, message):
    wd = tmp_path / "run"
    with pytest.raises(ValueError, match=message):
        trainer.train(_config(**fields), str(wd), evaluate=True)
    assert not wd.exists() or os.listdir(wd) == []


def test_corrected_rerun_is_not_refused(tmp_path):
    wd = str(tmp_path / "run")
    with pytest.raises(ValueError, match="topk"):
        trainer.train(_config(eval__topk=1000, train__val_localization_every=0), wd, evaluate=True)
    trainer.train(_config(train__val_localization_every=0), wd, evaluate=True)
    assert os.path.exists(os.path.join(wd, "model.weights.h5"))
