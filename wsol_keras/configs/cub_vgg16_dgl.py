r"""DGL on CUB-200-2011 with VGG16 (DGL, Tan et al. ACM MM 2020, Sec. 4.1).

    wsol-train --config=configs/cub_vgg16_dgl.py --workdir=runs/cub_vgg16_dgl \
            --config.data.root=/data/CUB_200_2011
    wsol-eval --workdir=runs/cub_vgg16_dgl --split=test

The classifier DGL reads (released chuangchuangtan/DGL train_code/models_vgg.py
`vgg_gap`): VGG16 up to conv5_3 (no pool5), a 3x3 conv to 1024 + ReLU ("add"),
GAP and a linear layer to 200 (the package's CAM model with conv_filters
(1024,)).  Sec. 4.1: input 224 cropped from 256, batch 32, weight decay 5e-4,
initial learning rate 0.002 with the added layers at 10x, 125 epochs on CUB,
rate / 10 at epochs 75 and 100.  Released optimizer (train_code/dgl_vgg.py):
`MomentumOptimizer(lr, 0.9, use_nesterov=True)`; L2 5e-4 in the cost on the
weights only (`regularize_cost('.*/W')`, so biases are not decayed) and the
gradients scaled conv W 1, conv b 2, added W 10, added b 20 (`sgd_l2`,
bias_lr_multiplier 2, decay_biases False).
Localization: DGL maps (Eq. 5, 7, 8) of conv4_2, the best VGG layer on CUB in
Sec. 4.3 / Table 2 (Keras layer `block4_conv2`, post-ReLU as tensorpack's
`conv4_2` + relu).  Initialization as released: the "add" 3x3 conv
`variance_scaling_initializer(scale=2.)` (He normal, the package's default) and
the "linear" layer N(0, 0.01) (`method.classifier_init_stddev=0.01`; the
package's 1x1 classifier before GAP equals that linear layer after GAP).
Test protocol (wsol_keras.evaluation.protocol), Sec. 4.2: images "reshaped to
224x224 and 10 crops averaged ... to obtain localization maps and
classification results respectively": classification averaged over ten crops
(4 corners, center and their mirrors, cut from the 256 x 256 resize as ACoL /
DANet do), DGL maps from the single 224 x 224 resize (as the released
test_code demo), resized to the original image size and boxed with the CAM
paper's largest-region rule (Sec. 3.5).  ``--config.eval.ten_crop_maps=average``
averages the crops' maps instead.
"""

from wsol_keras.configs import base as config_base
from wsol_keras.models.registry import default_method_config

DGL_LAYER = "backbone/vgg16_features/block4_conv2"


def get_config(arg=None):
    config = config_base.cub_vgg16_config(default_method_config("cam"))
    config.method.conv_filters = (1024,)
    config.method.classifier_init_stddev = 0.01  # models_vgg.py 'linear'
    config.train.epochs = 125
    config.train.batch_size = 32
    config.train.learning_rate = 0.002
    config.train.lr_schedule = "step"
    config.train.lr_decay_at_epochs = (75, 100)
    config.train.nesterov = True  # dgl_vgg.py use_nesterov=True
    config.train.bias_lr_multiplier = 2.0
    config.train.decay_biases = False  # regularize_cost('.*/W') only
    config.eval.map_method = "dgl"
    config.eval.dgl_layer = DGL_LAYER
    config.eval.ten_crop = True  # Sec. 4.2: classes from 10 crops
    config.eval.ten_crop_maps = "single"  # Sec. 4.2: maps from the 224 resize
    config.eval.image_size_mode = "original"  # Sec. 3.5
    if arg == "smoke":
        config_base.make_smoke(config)
    return config
