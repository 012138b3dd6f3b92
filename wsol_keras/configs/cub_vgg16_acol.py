r"""ACoL on CUB-200-2011 with VGG16 (ACoL Sec. 4.1 and the released code).

    wsol-train --config=configs/cub_vgg16_acol.py --workdir=runs/cub_vgg16_acol \
            --config.data.root=/data/CUB_200_2011

VGG16 cut after conv5_3, ImageNet weights, input 224 cropped from 256 (Sec.
4.1): as the released utils/LoadData.py (``transforms.Resize(256)``, an int:
the shorter side to 256, the aspect ratio kept, then ``RandomCrop(224)``),
``data.resize_mode="shorter_side"``; ``--config.data.resize_mode=square``
squashes to 256 x 256 as wsolevaluation. Classifiers A and B: two 3x3 convs to 1024 + ReLU and a 1x1 conv to 200
each, GAP (Sec. 4.1); erasing threshold delta = 0.6 for training and test
(released scripts/train_vgg_cub.sh). Released optimizer (xiaomengyc/ACoL,
exper/my_optim.py get_finetune_optimizer): torch SGD, Nesterov momentum 0.9,
coupled L2 weight decay 5e-4, base learning rate 1e-4; groups weights 1x,
biases 2x, new ("cls") weights 10x, new biases 20x (`sgd_l2`); batch 20, 60
epochs, constant rate.

Backbone pools as released (models/vgg/vgg_v1.py cfg 'D1'): the stride-2
pools are `MaxPool2d(3, stride=2, padding=1)` (`model.vgg_released_pools=True`,
the default here: the paper only names VGG16, whose pools are 2x2, and the
release decides; `--config.model.vgg_released_pools=False` gives Keras' 2x2
pools). The release's pool4 at stride 1 (28x28 maps) stays an option,
`--config.model.vgg_large_feature_map=True`, as issue 10 asked: 14x14 is the
paper's "remove the layers after conv5-3" and wsolevaluation's default, whose
ACoL ('acol' '14x14' in wsol/vgg.py) has pool4 3x3 stride 2 padding 1 too,
i.e. this config without the option.

Test protocol (wsol_keras.evaluation.protocol): classification averaged over ten
crops of the shorter-side-256 resize (released ``Resize(256)`` +
``TenCrop(224)``; Sec. 4.1: "we average the scores from the
softmax layer with 10 crops"); maps resized to each image's original size
and boxes scored there (Sec. 3.2), box of the largest connected region (Sec.
3.2, after the CAM paper).
"""

from wsol_keras.configs import base
from wsol_keras.models.registry import default_method_config


def get_config(arg=None):
    config = base.cub_vgg16_config(default_method_config("acol"))
    config.train.epochs = 60
    config.train.batch_size = 20
    config.train.learning_rate = 1e-4
    config.train.lr_schedule = "constant"
    config.train.nesterov = True  # released get_finetune_optimizer
    config.model.vgg_released_pools = True  # 'M' / 'M1': MaxPool2d(3, 2, 1)
    config.data.resize_mode = "shorter_side"  # LoadData.py Resize(256)
    config.eval.ten_crop = True  # Sec. 4.1
    config.eval.image_size_mode = "original"  # Sec. 3.2
    if arg == "smoke":
        base.make_smoke(config)
    return config
