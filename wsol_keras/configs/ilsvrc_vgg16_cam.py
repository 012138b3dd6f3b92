r"""CAM on ILSVRC 2012 with VGG16, as clovaai/wsolevaluation trains it.

    wsol-train --config=configs/ilsvrc_vgg16_cam.py --workdir=runs/ilsvrc_vgg16_cam \
        --config.data.root=dataset/ILSVRC --config.data.metadata=metadata/ILSVRC

Data and training: `wsol_keras.configs.base.ilsvrc_cam_config` (wsolevaluation's
layout and its ``config.py`` defaults for ILSVRC).

VGG16 CAM head as wsolevaluation's ``wsol/vgg.py``: conv5_3 features, one
3x3 conv to 1024 channels, GAP, classifier.
"""

from wsol_keras.configs import base


def get_config(arg=None):
    config = base.ilsvrc_cam_config("vgg16", (1024,))
    if arg == "smoke":
        base.make_smoke(config)
    return config
