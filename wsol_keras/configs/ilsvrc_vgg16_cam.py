r"""CAM on ILSVRC 2012 with VGG16, as clovaai/wsolevaluation trains it.

    wsol-train --config=configs/ilsvrc_vgg16_cam.py --workdir=runs/ilsvrc_vgg16_cam \
        --config.data.root=dataset/ILSVRC --config.data.metadata=metadata/ILSVRC

Data and the shared schedule (batch 32, 10 epochs, x0.1 every 3 epochs, torch
SGD with Nesterov and coupled L2, classifier at 10x):
`wsol_keras.configs.base.ilsvrc_cam_config`.

Rate and weight decay: ``--lr 0.00001654502 --weight_decay 5.00E-04
--large_feature_map FALSE``, the ILSVRC VGG16 CAM row of wsolevaluation's
hyperparameter spreadsheet (linked from its README, not in the repository) as
copied in finallyupper/dual-cam scripts/run_train.sh ("1-1. vgg16_cam"); the
README's own example command (OpenImages VGG16 CAM) has the same wd 5e-4.

VGG16 CAM head as wsolevaluation's ``wsol/vgg.py``: conv5_3 features, one
3x3 conv to 1024 channels, GAP, classifier.
"""

from wsol_keras.configs import base


def get_config(arg=None):
    config = base.ilsvrc_cam_config(
        "vgg16", (1024,), learning_rate=0.00001654502, weight_decay=5e-4
    )
    if arg == "smoke":
        base.make_smoke(config)
    return config
