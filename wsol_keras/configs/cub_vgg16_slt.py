r"""SLT-Net on CUB-200-2011 with VGG16 (settings of SLT-Net Sec. 4.1).

    wsol-train --config=configs/cub_vgg16_slt.py --workdir=runs/cub_vgg16_slt \
            --config.data.root=/data/CUB_200_2011

Localizer, regressor and classifier each on an ImageNet-pretrained VGG16
(the localizer's cut after conv5_3 with a GAP head, the CAM-VGG of [53] with
a 3x3 conv to 1024 channels). SGD momentum 0.9, weight decay 5e-4, learning
rate 0.0002 (the paper's "new optimization": low rate, few iterations; no 10x
for new layers is mentioned), batch 16, 4 epochs, 224 crops from 256.
alpha=0.4, K=30 of 200 (k=0.15, so the same config fits other class counts),
beta=10. Localizer maps are scored with the top-K ACAM (Eq. 9).
The classifier "is trained independently" (Sec. 3.1, Fig. 2b; Top-1 Cls 76.6
with VGG16, Sec. 4.2) and the paper gives no schedule of its own: here it
trains in the same steps but at its own rate, 0.001 for its backbone and 0.01
for its new 200-way layer (classifier_lr_multiplier 5, head 10: the CAM-VGG
fine-tuning rate of wsolevaluation / ACoL), instead of the localizer's 0.0002
with no 10x.  Its number of steps stays the localizer's 4 epochs; a longer
classifier run (a separately trained checkpoint) is not wired yet.
Test protocol (Sec. 4.1; wsol_keras.eval_protocol): "ten crop augmentations
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
    config.train.epochs = 4
    config.train.batch_size = 16
    config.train.learning_rate = 0.0002
    config.train.lr_schedule = "constant"
    config.train.head_lr_multiplier = 1.0
    # The classifier's own rate: 5 x 0.0002 = 0.001, its Dense layer 10x that.
    config.method.classifier_lr_multiplier = 5.0
    config.method.classifier_head_lr_multiplier = 10.0
    config.eval.map_method = "topk"
    config.eval.topk = 30
    config.eval.ten_crop = True  # Sec. 4.1
    if arg == "smoke":
        base.make_smoke(config)
    return config
