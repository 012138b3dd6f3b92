r"""CAM on ILSVRC 2012 with InceptionV3, as clovaai/wsolevaluation trains it.

    wsol-train --config=configs/ilsvrc_inceptionv3_cam.py --workdir=runs/ilsvrc_inceptionv3_cam \
        --config.data.root=dataset/ILSVRC --config.data.metadata=metadata/ILSVRC

Data and the shared schedule (batch 32, 10 epochs, x0.1 every 3 epochs, torch
SGD with Nesterov and coupled L2, classifier at 10x):
`wsol_keras.configs.base.ilsvrc_cam_config`.

Rate and weight decay: ``--lr 0.0003606503 --weight_decay 5.00E-04``, the
ILSVRC InceptionV3 CAM row of wsolevaluation's hyperparameter spreadsheet
(linked from its README, not in the repository) as copied in
finallyupper/dual-cam scripts/run_train.sh ("3-1. Inceptionv3_cam").  That row
runs ``--large_feature_map TRUE``; wsolevaluation's ``InceptionCam`` also
differs from Keras' InceptionV3 (Mixed_6a at stride 1 with padding, dropout
0.5 before each head conv), which the package does not reproduce.

InceptionV3 CAM head as wsolevaluation's ``wsol/inception.py``: two 3x3
convs to 1024 channels (its SPG_A3 blocks) after Mixed_6e, then the 1x1
classifier.
"""

from wsol_keras.configs import base


def get_config(arg=None):
    config = base.ilsvrc_cam_config(
        "inception_v3", (1024, 1024), learning_rate=0.0003606503, weight_decay=5e-4
    )
    if arg == "smoke":
        base.make_smoke(config)
    return config
