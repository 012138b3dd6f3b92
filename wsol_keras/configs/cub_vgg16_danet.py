r"""DANet on CUB-200-2011 with VGG16 (DANet Sec. 4.1 and the released code).

    wsol-train --config=configs/cub_vgg16_danet.py --workdir=runs/cub_vgg16_danet \
            --config.data.root=/data/CUB_200_2011

CUB's taxonomy: 200 species -> 37 families -> 11 orders (Sec. 4.1), read from
DANet's released per-image lists: copy ``data/CUB_200_2011/list/`` of
github.com/xuehaolan/DANet (``family_label.txt``, ``order_label.txt``) into the
CUB root, or point ``--config.data.hierarchy_file=/abs/family_label.txt,/abs/order_label.txt``
at them. A missing file is an error; ``--config.data.hierarchy_file=''`` falls
back on the name-based stand-in, with a warning (its level 2 is no taxonomy). Heads as the released
vgg_DA.py: orders on pool3 (3x3 convs 512, 512), families on pool4 and species
on conv5_3 (3x3 convs 1024, 1024), K = 8 maps per class; HDA 0.5 x CE per
level, DDA lambda = 0.01 on half of the 24 maps. DDA as the released vgg_DA.py
``get_loss`` / ``calculate_cosineloss``: the shallower levels' maps upsampled
with ``align_corners=True`` (``method.dda_align_corners``) and the absolute
value of each image's summed similarity (``method.dda_absolute="image"``;
``"pair"``, |S| per pair, is the package's option).  Released schedule
(xuehaolan/DANet scripts/train_DA_cub.sh; exper/train_DA.py builds its own
``optim.SGD`` -- ``get_finetune_optimizer`` is not called in training): torch
SGD, momentum 0.9, **Nesterov**, coupled L2 weight decay 5e-4, learning rate
0.001; groups weights 1x, biases 2x, new layers 10x, new biases 20x
(`sgd_l2`); batch 30, 100 epochs, rate / 10 at epoch 80 (``reduce_lr`` at
the start of the epoch); input 224 cropped from 256.
Test protocol as released (exper/val_hierarchy.py, utils/loader.py,
utils/localization.py; wsol_keras.evaluation.protocol): classification averaged
over ten crops of the 256 x 256 resize (also Sec. 4.1), maps resized to the
original image size, the union box over all pixels above the threshold
(``mode='union'``; the paper's Sec. 3.3 cites the CAM paper's largest-region
box: ``--config.eval.box_method=largest_contour``), its threshold chosen on
val among the released sweep 0.05..0.30 (reported per threshold).
"""

from wsol_keras.configs import base
from wsol_keras.models.registry import default_method_config


def get_config(arg=None):
    config = base.cub_vgg16_config(default_method_config("danet"))
    config.train.epochs = 100
    config.train.batch_size = 30
    config.train.learning_rate = 0.001
    config.train.lr_schedule = "step"
    config.train.lr_decay_epochs = 80
    # Relative to data.root (wsol_keras.data.hierarchy_lists documents the format).
    config.data.hierarchy_file = "list/family_label.txt,list/order_label.txt"
    config.train.nesterov = True  # exper/train_DA.py optim.SGD(nesterov=True)
    config.method.dda_absolute = "image"  # vgg_DA.py calculate_cosineloss
    config.method.dda_align_corners = True  # vgg_DA.py get_loss F.upsample
    config.eval.ten_crop = True  # val_hierarchy.py --tencrop True
    config.eval.image_size_mode = "original"  # localization.py cv2.resize((w, h))
    config.eval.box_method = "danet_union"  # localization.py mode='union'
    if arg == "smoke":
        base.make_smoke(config)
    return config
