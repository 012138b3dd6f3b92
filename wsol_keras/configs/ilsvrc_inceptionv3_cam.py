r"""CAM on ILSVRC 2012 with InceptionV3, as clovaai/wsolevaluation trains it.

    wsol-train --config=configs/ilsvrc_inceptionv3_cam.py --workdir=runs/ilsvrc_inceptionv3_cam \
        --config.data.root=dataset/ILSVRC --config.data.metadata=metadata/ILSVRC

Data and training: `wsol_keras.configs.base.ilsvrc_cam_config` (wsolevaluation's
layout and its ``config.py`` defaults for ILSVRC).

InceptionV3 CAM head as wsolevaluation's ``wsol/inception.py``: two 3x3
convs to 1024 channels (its SPG_A3 blocks) after Mixed_6e, then the 1x1
classifier.
"""

from wsol_keras.configs import base


def get_config(arg=None):
    config = base.ilsvrc_cam_config("inception_v3", (1024, 1024))
    if arg == "smoke":
        base.make_smoke(config)
    return config
