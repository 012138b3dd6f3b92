r"""CAM on ILSVRC 2012 with ResNet50, as clovaai/wsolevaluation trains it.

    wsol-train --config=configs/ilsvrc_resnet50_cam.py --workdir=runs/ilsvrc_resnet50_cam \
        --config.data.root=dataset/ILSVRC --config.data.metadata=metadata/ILSVRC

Data and the shared schedule (batch 32, 10 epochs, x0.1 every 3 epochs, torch
SGD with Nesterov and coupled L2, new layers at 10x):
`wsol_keras.configs.base.ilsvrc_cam_config`.

Rate and weight decay: ``--lr 0.00003108411 --weight_decay 1.00E-04``, the
ILSVRC ResNet50 CAM row of wsolevaluation's hyperparameter spreadsheet
(linked from its README, not in the repository) as copied in
finallyupper/dual-cam scripts/run_train.sh ("2-1. resnet50_cam"; the same rate
in dongjunhwang/small_object_wsol's ImageNet ResNet scripts).  That row runs
``--large_feature_map TRUE``.

ResNet50 CAM as wsolevaluation's ``wsol/resnet.py`` ``ResNetCam``: ``layer4``
is always built with ``stride=1`` (``model.resnet_last_stride=1``) and
``large_feature_map`` sets ``stride_l3 = 1`` for ``layer3``
(``model.resnet_large_feature_map=True``: Keras' conv4 stage), so the maps
are 28x28 at 224, straight into GAP and the classifier.  Keras' ResNet50 is
v1 (stride on the 1x1 convs) where torchvision's is v1.5 (stride on the 3x3):
with layer3 and layer4 at stride 1 this only changes conv3 / ``layer2``
(see `wsol_keras.models.backbones._resnet_stride_one`).

Rate groups: ``main.py`` ``Trainer._set_optimizer`` puts every ResNet
parameter whose name contains ``'layer4.'`` or ``'fc.'``
(``_FEATURE_PARAM_LAYER_PATTERNS['resnet']``) in the
``--lr_classifier_ratio`` (10x) group, the rest (conv1, bn1, layer1-3) at
``--lr``.  Here conv5_* (``train.head_lr_backbone_prefixes``) and the new head
train at ``train.head_lr_multiplier`` = 10, conv1-conv4 at 1x.
"""

from wsol_keras.configs import base


def get_config(arg=None):
    config = base.ilsvrc_cam_config(
        "resnet50", (), learning_rate=0.00003108411, weight_decay=1e-4
    )
    config.model.resnet_last_stride = 1  # ResNetCam: layer4 stride=1
    config.model.resnet_large_feature_map = True  # --large_feature_map TRUE
    # main.py _FEATURE_PARAM_LAYER_PATTERNS['resnet'] = ['layer4.', 'fc.']
    config.train.head_lr_backbone_prefixes = ("conv5_",)
    if arg == "smoke":
        base.make_smoke(config)
    return config
