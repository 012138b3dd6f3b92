r"""ACoL on the built-in synthetic benchmark.

    wsol-train --config=configs/synthetic_acol.py --workdir=runs/synthetic_acol

Same budget as configs/synthetic_cam.py (backbone, epochs, batch, optimizer,
seed); only the method section differs: two classifiers with one 3x3 conv to
128 channels each (two 3x3 convs to 1024 on real data) and erasing threshold
delta = 0.6 (released code). `--config=configs/synthetic_acol.py:smoke` runs in
seconds.
"""

from wsol_keras.configs import base
from wsol_keras.models.registry import default_method_config


def get_config(arg=None):
    config = base.base_config()
    config.method = default_method_config("acol")
    config.method.conv_filters = (128,)
    if arg == "smoke":
        base.make_smoke(config)
    return config
