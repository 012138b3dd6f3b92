r"""SPN on PASCAL VOC 2007 with VGG16 (SPN Sec. 4 and the released SPN.pytorch demo).

    wsol-train --config=configs/voc07_vgg16_spn.py --workdir=runs/voc07_vgg16_spn \
            --config.data.root=/data/VOCdevkit/VOC2007
    # or from TFDS (after `tfds build voc/2007`):
    #       --config.data.name=tfds --config.data.tfds_name=voc/2007

Multi-label: one sigmoid per class (the released MultiLabelSoftMarginLoss), the
image label = classes with a non-difficult object (the released engine keeps
VOC's "difficult only" state as a negative). Settings of the released
``demo/runme.sh`` + ``demo_voc2007.py`` + ``engine.py``: VGG16 (ImageNet) cut
after conv5_3, 3x3 conv to 1024 with groups=2 (``method.groups``) +
SoftProposal with the released layer's eps = 0.15 x H x W
(``method.epsilon_basis="area"``) + spatial sum pooling; SGD
momentum 0.9, weight decay 5e-4, learning rate 0.01 for *every* layer (one
parameter group, so head_lr_multiplier 1; Sec. 4: "initial learning rate 0.01"),
batch 16, 20 epochs, rate / 10 at epoch 10 (engine epoch_step [10]); train on
trainval, test on test; training images warped to (S + 30) and randomly cropped
to S with flips (crop_scale (224 + 30) / 224), test images warped to S.
The release trains one model per scale (112, 224, 560) and evaluates at 224:
this config is the 224 one.

Evaluation (SPN Sec. 4.2-4.4; wsol_keras.evaluation.multilabel_metrics): pointing game at
15 px tolerance on test (All and Zhang et al.'s difficult subset), CorLoc on the
positive trainval images with the box over pixels >= the map mean, and
classification mAP skipping difficult-only images.
Differences: weight decay follows config.train's optimizer semantics (see the
optimizer notes).
"""

from wsol_keras.configs import base as config_base
from wsol_keras.models.registry import default_method_config


def get_config(arg=None):
    config = config_base.base_config()
    config.data.name = "voc"
    config.data.root = ""  # set --config.data.root (VOCdevkit/VOC2007)
    config.data.split_map = "train=trainval,val=test,test=test"
    config.data.image_size = 224
    config.model.backbone = "vgg16"
    config.model.weights = "imagenet"
    config.method = default_method_config("spn")
    config.method.multi_label = True
    config.method.num_maps = 1024
    config.method.groups = 2  # vgg16_sp adconv groups=2
    config.method.epsilon_basis = "area"  # vgg16_sp SoftProposal(): 0.15 * H * W
    config.train.optimizer = "sgd"
    config.train.momentum = 0.9
    config.train.weight_decay = 5e-4
    config.train.learning_rate = 0.01
    config.train.head_lr_multiplier = 1.0
    config.train.lr_schedule = "step"
    config.train.lr_decay_epochs = 10
    config.train.lr_decay_factor = 0.1
    config.train.epochs = 20
    config.train.batch_size = 16
    config.train.crop_scale = (224 + 30) / 224
    config.train.flip = True
    config.eval.batch_size = 16
    config.eval.pointing_tolerance = 15
    if arg == "smoke":
        config_base.make_smoke(config)
    return config
