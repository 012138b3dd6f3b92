"""The ILSVRC / OpenImages configs carry clovaai/wsolevaluation's settings.

Expected values are typed from wsolevaluation's text, not from the configs:
``main.py`` ``_set_optimizer`` (``torch.optim.SGD(..., weight_decay=...,
nesterov=True)``: coupled L2, Nesterov; features at ``--lr``, the rest at
``--lr_classifier_ratio`` 10x), ``config.py`` (``--momentum 0.9``,
``--cam_curve_interval .001``, ``--resize_size 256``, ``--crop_size 224``),
``wsol/resnet.py`` ``ResNetCam`` (``layer4`` built with ``stride=1``), the
README's OpenImages VGG16 CAM command (``--batch_size 32 --epochs 10 --lr
0.00227913316 --lr_decay_frequency 3 --weight_decay 5.00E-04``) and, for the
ILSVRC rows of the hyperparameter spreadsheet the README links (not in the
repository), the CAM commands of finallyupper/dual-cam scripts/run_train.sh:
``--epoch 10 --batch_size 32 --lr_decay_frequency 3`` with ``--lr
0.00001654502 --weight_decay 5.00E-04`` (vgg16), ``--lr 0.00003108411
--weight_decay 1.00E-04`` (resnet50), ``--lr 0.0003606503 --weight_decay
5.00E-04`` (inception_v3).
"""
import os

import pytest

from file_modules import load_module
from wsol_keras import configs as configs_pkg
from wsol_keras import data as data_lib
CONFIG_DIR = os.path.dirname(os.path.abspath(configs_pkg.__file__))


def load(name, arg=None):
    path = os.path.join(CONFIG_DIR, name + ".py")
    return load_module(name, path).get_config(arg)


def _common(c):
    assert c.data.name == "wsol_metadata"
    assert c.data.image_size == 224  # --crop_size 224
    assert c.train.crop_scale * 224 == pytest.approx(256)  # --resize_size 256
    assert c.train.optimizer == "sgd_l2" and c.train.momentum == 0.9
    assert c.train.nesterov is True  # main.py SGD(nesterov=True)
    assert c.train.bias_lr_multiplier == 1.0 and c.train.decay_biases is True
    assert c.train.head_lr_multiplier == 10  # --lr_classifier_ratio 10
    assert c.train.lr_schedule == "step" and c.train.lr_decay_factor == 0.1
    assert c.eval.cam_threshold_step == pytest.approx(0.001)  # cam_curve_interval
    assert tuple(c.eval.iou_thresholds) == (30, 50, 70)  # README iou_threshold_list
    assert c.model.weights == "imagenet"  # --pretrained TRUE
    assert c.method.name == "cam"


@pytest.mark.parametrize(
    "name,backbone,filters,lr,wd",
    [
        ("ilsvrc_vgg16_cam", "vgg16", (1024,), 0.00001654502, 5e-4),
        ("ilsvrc_resnet50_cam", "resnet50", (), 0.00003108411, 1e-4),
        ("ilsvrc_inceptionv3_cam", "inception_v3", (1024, 1024), 0.0003606503, 5e-4),
    ],
)
def test_ilsvrc_configs_use_wsolevaluations_tuned_rows(name, backbone, filters, lr, wd):
    c = load(name)
    _common(c)
    assert c.model.backbone == backbone
    assert tuple(c.method.conv_filters) == filters
    assert c.train.epochs == 10 and c.train.batch_size == 32
    assert c.train.learning_rate == pytest.approx(lr)
    assert c.train.lr_decay_epochs == 3
    assert c.train.weight_decay == pytest.approx(wd)
    # 1.2M images: no decode pass over every image before the first step
    assert c.data.validate_images is False
    assert load(name, "smoke").train.steps_per_epoch == 2


def test_ilsvrc_resnet50_keeps_layer4_at_stride_one_as_wsolevaluation():
    # wsol/resnet.py ResNetCam: self.layer4 = self._make_layer(..., stride=1).
    assert load("ilsvrc_resnet50_cam").model.resnet_last_stride == 1


def test_ilsvrc_resnet50_runs_the_large_feature_map_and_layer4_at_10x():
    c = load("ilsvrc_resnet50_cam")
    # the spreadsheet row's --large_feature_map TRUE: ResNetCam stride_l3 = 1
    assert c.model.resnet_large_feature_map is True
    # main.py _FEATURE_PARAM_LAYER_PATTERNS['resnet'] = ['layer4.', 'fc.'] at
    # lr_classifier_ratio: torchvision's layer4 is Keras' conv5 stage
    assert tuple(c.train.head_lr_backbone_prefixes) == ("conv5_",)


@pytest.mark.parametrize(
    "name", ["ilsvrc_vgg16_cam", "ilsvrc_inceptionv3_cam", "openimages_vgg16_cam"]
)
def test_other_wsolevaluation_configs_keep_one_backbone_group(name):
    # vgg / inception: 'features.' / 'Mixed...' are the 1x group, the rest
    # (the new head) at 10x: no backbone layer joins the head.
    c = load(name)
    assert tuple(c.train.head_lr_backbone_prefixes) == ()
    assert c.model.resnet_large_feature_map is False


def test_openimages_config_uses_the_readme_command():
    c = load("openimages_vgg16_cam")
    _common(c)
    assert c.model.backbone == "vgg16" and tuple(c.method.conv_filters) == (1024,)
    assert c.train.batch_size == 32 and c.train.epochs == 10
    assert c.train.learning_rate == pytest.approx(0.00227913316)
    assert c.train.lr_decay_epochs == 3
    assert c.train.weight_decay == pytest.approx(5e-4)


def test_openimages_config_reads_masks_with_ignore_and_the_fullsup_val(tmp_path):
    from data.test_data_wsol_metadata import make_mask_dataset

    root, meta = make_mask_dataset(tmp_path)
    c = load("openimages_vgg16_cam")
    c.data.root, c.data.metadata, c.data.image_size = str(root), str(meta), 16
    src = data_lib.get_source(c.data)
    assert "val" in src.splits  # wsolevaluation's train-fullsup folder
    (e,) = list(src.dataset("val").as_numpy_iterator())
    assert e["has_mask"]
    # make_mask_dataset: instance masks rows 0-3 and cols 0-1 OR-ed; ignore
    # region rows/cols 0-7 minus foreground -> 255
    assert e["mask"][0, 5] == 1 and e["mask"][6, 1] == 1
    assert e["mask"][5, 5] == 255 and e["mask"][12, 12] == 0
