r"""SPN on CUB-200-2011 with VGG16 (SPN Sec. 4 and the released SPN.pytorch).

    wsol-train --config=configs/cub_vgg16_spn.py --workdir=runs/cub_vgg16_spn \
            --config.data.root=/data/CUB_200_2011

VGG16 cut after conv5_3 (14 x 14 at 224, as the released `vgg16_sp`, which
drops pool5), ImageNet weights, input 224 cropped from 256. Head of the
released `vgg16_sp` (demo/experiment/models.py): 3x3 conv to 1024 with
``groups=2`` + ReLU, ``SoftProposal()`` with the released layer's default
eps = 0.15 x H x W (29.4 on 14 x 14; ``method.epsilon_basis="area"``; the
paper's 0.15 N with N the side, 2.1, is ``--config.method.epsilon_basis=side``,
as the released SP_GoogLeNet's ``factor=2.1``), 20 walk updates, no gradient
through M, spatial sum pooling, dropout 0.5, dense to 200. Optimizer as released
(yeezhu/SPN.pytorch demo/experiment/engine.py `multi_learning` and
demo_voc2007.py defaults): `torch.optim.SGD(model.parameters(), lr=0.01,
momentum=0.9, weight_decay=5e-4)`, i.e. ONE group, every layer (backbone
included) at 0.01, coupled L2, no Nesterov, no bias rate (`sgd_l2` with
head_lr_multiplier 1 and bias_lr_multiplier 1).  (An earlier version of this
config used 0.001 for the backbone citing an "lrp = 0.1"; neither released
repository contains it.)  Batch 16 and 20 epochs as the released VOC demo
(runme.sh; the paper reports no CUB schedule), rate / 10 at epoch 10
(engine.py epoch_step [10]).
Test protocol (Sec. 4.3; wsol_keras.evaluation.protocol): the map thresholded at
its mean, "rescaled to the original image size", the tightest box over all
foreground pixels (as the released ``localize_from_map``: the map is resized
first, then thresholded at its mean); Object Energy (Sec. 4.1) of the
proposal map is reported too.  No ten-crop (the paper does not use it).
"""

from wsol_keras.configs import base
from wsol_keras.models.registry import default_method_config


def get_config(arg=None):
    config = base.cub_vgg16_config(default_method_config("spn"))
    config.method.groups = 2  # vgg16_sp adconv groups=2
    config.method.epsilon_basis = "area"  # vgg16_sp SoftProposal(): 0.15 * H * W
    config.train.epochs = 20
    config.train.batch_size = 16
    config.train.learning_rate = 0.01
    config.train.head_lr_multiplier = 1.0  # released: one group
    config.train.bias_lr_multiplier = 1.0
    config.train.lr_schedule = "step"
    config.train.lr_decay_epochs = 10
    config.eval.box_method = "spn"  # Sec. 4.3
    config.eval.image_size_mode = "original"  # Sec. 4.3
    if arg == "smoke":
        base.make_smoke(config)
    return config
