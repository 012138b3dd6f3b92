r"""SLT-Net on CUB-200-2011 with VGG16 (settings of SLT-Net Sec. 4.1).

    wsol-train --config=configs/cub_vgg16_slt.py --workdir=runs/cub_vgg16_slt \
            --config.data.root=/data/CUB_200_2011

Localizer, regressor and classifier each on an ImageNet-pretrained VGG16
(the localizer's cut after conv5_3 with a GAP head, the CAM-VGG of [53] with
a 3x3 conv to 1024 channels). SGD momentum 0.9, weight decay 5e-4, learning
rate 0.0002 (the paper's "new optimization": low rate, few iterations; no 10x
for new layers and no bias rate are mentioned: one rate for every variable),
batch 16, 4 epochs, 224 crops from 256.
alpha=0.4, K=30 of 200 (k=0.15, so the same config fits other class counts),
beta=10. Localizer maps are scored with the top-K ACAM (Eq. 9).

The classifier "is trained independently" (Sec. 3.1, Fig. 2b): ImageNet
VGG16 with a new 200-way output (Sec. 4.2, Top-1 Cls 76.6), 224 crops from
256 (Sec. 4.1).  The command above runs two phases in one workdir: phase 1
trains the classifier alone into ``runs/cub_vgg16_slt/classifier/``
(``method.classifier_head="vgg_fc"``: VGG16 with its own ImageNet fc6 / fc7,
dropout 0.5 after each as in the VGG paper, and a new Dense(200); resumable,
evaluable with wsol-eval -- its localization maps are a class-agnostic
stand-in, `wsol_keras.models.classifier`), phase 2
trains localizer and regressor with that classifier frozen.  The paper gives
no classifier schedule, so ``method.classifier_train`` takes the released CUB
CAM-VGG16 fine-tuning schedule of DANet (xuehaolan/DANet
scripts/train_CAM_cub.sh, exper/train_CAM.py): lr 0.001, batch 30, 100
epochs, x0.1 at epoch 80, torch SGD momentum 0.9 with Nesterov, coupled wd
5e-4, weights 1x, biases 2x, the new layer 10x (its bias 20x).

A classifier trained elsewhere (same backbone, same head, same class list)
replaces phase 1, e.g. a GAP-head one:

    wsol-train --config=configs/cub_vgg16_cam.py --workdir=runs/cub_vgg16_cls \
            --config.data.root=/data/CUB_200_2011 --config.method.conv_filters='()'
    wsol-train --config=configs/cub_vgg16_slt.py --workdir=runs/cub_vgg16_slt \
            --config.data.root=/data/CUB_200_2011 \
            --config.method.classifier_head=gap \
            --config.method.classifier_train.epochs=0 \
            --config.method.classifier_weights=runs/cub_vgg16_cls

and ``--config.method.classifier_train.epochs=0
--config.method.classifier_lr_multiplier=5
--config.method.classifier_head_lr_multiplier=10`` trains it jointly with
the localizer (its 4 epochs) at 0.001 / 0.01 instead.

Test protocol (Sec. 4.1; wsol_keras.evaluation.protocol): "ten crop augmentations
to get final classification results and single image input for all our
localization results"; the box and image size stay wsolevaluation's (the
paper does not say otherwise and has no released code).
"""

from wsol_keras.configs import base
from wsol_keras.models.registry import default_method_config


def get_config(arg=None):
    config = base.cub_vgg16_config(default_method_config("slt"))
    config.method.k = 0.15
    config.method.alpha = 0.4
    config.method.beta = 10.0
    config.method.conv_filters = (1024,)
    config.method.classifier_head = "vgg_fc"  # Sec. 4.2: VGG16, output 1000 -> 200
    config.train.epochs = 4
    config.train.batch_size = 16
    config.train.learning_rate = 0.0002
    config.train.lr_schedule = "constant"
    config.train.head_lr_multiplier = 1.0
    config.train.bias_lr_multiplier = 1.0  # Sec. 4.1: one rate, no bias group
    # Phase 1: the classifier on its own (Sec. 3.1, Fig. 2b); the paper gives
    # no schedule: DANet's released CUB CAM-VGG16 one (train_CAM_cub.sh).
    schedule = config.method.classifier_train
    schedule.epochs = 100
    schedule.batch_size = 30
    schedule.learning_rate = 0.001
    schedule.lr_schedule = "step"
    schedule.lr_decay_epochs = 80
    schedule.lr_decay_factor = 0.1
    schedule.head_lr_multiplier = 10.0
    schedule.bias_lr_multiplier = 2.0
    schedule.nesterov = True
    config.eval.map_method = "topk"
    config.eval.topk = 30
    config.eval.ten_crop = True  # Sec. 4.1
    if arg == "smoke":
        base.make_smoke(config)
        schedule.epochs = 1
        schedule.batch_size = config.train.batch_size
    return config
