r"""CAM on CUB-200-2011 with VGG16 (settings of ACoL Sec. 4.1 / wsolevaluation).

    wsol-train --config=configs/cub_vgg16_cam.py --workdir=runs/cub_vgg16_cam \
            --config.data.root=/data/CUB_200_2011

VGG16 cut after conv5_3 (no pool5), ImageNet weights, input 224 cropped from
256, SGD momentum 0.9, weight decay 5e-4, learning rate 0.001 with the new
layers at 10x, 30 epochs with the rate divided by 10 every 10 epochs (the
released ACoL/wsolevaluation VGG16 CAM schedule, batch 32).  Optimizer of
clovaai/wsolevaluation main.py `_set_optimizer`: torch SGD with coupled L2,
Nesterov, two groups (features lr, classifier lr x lr_classifier_ratio) and no
separate bias rate (`sgd_l2`, bias_lr_multiplier 1).  The CAM head of
wsolevaluation's VGG16 adds a 3x3 conv to 1024 channels before the classifier.
"""

from wsol_keras.configs import base
from wsol_keras.models.registry import default_method_config


def get_config(arg=None):
    return wsolevaluation_vgg16_cam(default_method_config("cam"), arg)


def wsolevaluation_vgg16_cam(method_config, arg=None):
    """wsolevaluation's VGG16 CAM training on CUB for `method_config` (CAM
    and the methods it trains the same way: HaS, ADL, CutMix).

    Args:
        method_config: the method's ConfigDict (`default_method_config(name)`).
        arg: the config argument (``"smoke"`` shrinks the run to seconds).
    """
    config = base.cub_vgg16_config(method_config)
    config.method.conv_filters = (1024,)  # wsol/vgg.py VggCam conv6
    config.train.epochs = 30
    config.train.batch_size = 32
    config.train.learning_rate = 0.001
    config.train.lr_schedule = "step"
    config.train.lr_decay_epochs = 10
    config.train.nesterov = True  # wsolevaluation main.py
    config.train.bias_lr_multiplier = 1.0  # wsolevaluation: two groups only
    if arg == "smoke":
        base.make_smoke(config)
    return config
