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
``--large_feature_map TRUE`` (layer3 at stride 1 too: 28x28 maps), which the
package's ResNet50 does not offer: here the maps are 14x14.

ResNet50 CAM as wsolevaluation's ``wsol/resnet.py`` ``ResNetCam``: layer4 is
built with ``stride=1`` (``model.resnet_last_stride=1``: 14x14 maps at 224)
straight into GAP and the classifier. Its ``main.py`` puts layer4 and fc in the
10x group; here only the new head is at 10x (``train.head_lr_multiplier``).
"""

from wsol_keras.configs import base


def get_config(arg=None):
    config = base.ilsvrc_cam_config(
        "resnet50", (), learning_rate=0.00003108411, weight_decay=1e-4
    )
    config.model.resnet_last_stride = 1  # ResNetCam: layer4 stride=1
    if arg == "smoke":
        base.make_smoke(config)
    return config
