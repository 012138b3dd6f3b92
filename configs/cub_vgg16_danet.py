r"""DANet on CUB-200-2011 with VGG16 (DANet Sec. 4.1 and the released code).

    wsol-train --config=configs/cub_vgg16_danet.py --workdir=runs/cub_vgg16_danet \
            --config.data.root=/data/CUB_200_2011

CUB's taxonomy: 200 species -> 37 families -> 11 orders (Sec. 4.1; the data
source reads it from the hierarchy file or builds one). Heads as the released
vgg_DA.py: orders on pool3 (3x3 convs 512, 512), families on pool4 and species
on conv5_3 (3x3 convs 1024, 1024), K = 8 maps per class; HDA 0.5 x CE per
level, DDA lambda = 0.01 on half of the 24 maps. Released schedule
(xuehaolan/DANet scripts/train_DA_cub.sh, exper/my_optim.py
get_finetune_optimizer): torch SGD, momentum 0.9 (no Nesterov, unlike ACoL's
copy of the same function), coupled L2 weight decay 5e-4, learning rate 0.001;
groups weights 1x, biases 2x, new layers 10x, new biases 20x (`sgd_l2`);
batch 30, 100 epochs, rate / 10 at epoch 80; input 224 cropped from 256.
"""

from wsol_keras import config_base
from wsol_keras.models import danet


def get_config(arg=None):
    config = config_base.cub_vgg16_config(danet.default_method_config())
    config.train.epochs = 100
    config.train.batch_size = 30
    config.train.learning_rate = 0.001
    config.train.lr_schedule = "step"
    config.train.lr_decay_epochs = 80
    config.train.nesterov = False  # released DANet my_optim: no nesterov
    if arg == "smoke":
        config_base.make_smoke(config)
    return config
