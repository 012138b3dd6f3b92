r"""CAM baseline on the built-in synthetic benchmark (training of the default experiment).

    wsol-train --config=configs/synthetic_cam.py --workdir=runs/cam
    wsol-train --config=configs/synthetic_cam.py --workdir=runs/cam \
        --config.train.epochs=3

`--config=configs/synthetic_cam.py:smoke` shrinks the run to seconds (tests).
"""

from wsol_keras.configs import base


def get_config(arg=None):
    config = base.base_config()
    config.method.name = "cam"
    if arg == "smoke":
        base.make_smoke(config)
    return config
