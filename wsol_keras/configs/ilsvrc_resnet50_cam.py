r"""CAM on ILSVRC 2012 with ResNet50, as clovaai/wsolevaluation trains it.

    wsol-train --config=configs/ilsvrc_resnet50_cam.py --workdir=runs/ilsvrc_resnet50_cam \
        --config.data.root=dataset/ILSVRC --config.data.metadata=metadata/ILSVRC

Data and training: `wsol_keras.configs.base.ilsvrc_cam_config` (wsolevaluation's
layout and its ``config.py`` defaults for ILSVRC).

ResNet50 CAM as wsolevaluation's ``wsol/resnet.py``: layer4 (stride 2 kept,
``--large_feature_map`` off) straight into GAP and the classifier. Its
``main.py`` puts layer4 and fc in the 10x group; here only the new head is at
10x (``train.head_lr_multiplier``).
"""

from wsol_keras.configs import base


def get_config(arg=None):
    config = base.ilsvrc_cam_config("resnet50", ())
    if arg == "smoke":
        base.make_smoke(config)
    return config
