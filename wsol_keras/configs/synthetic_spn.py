r"""SPN (Soft Proposal Networks) on the built-in synthetic benchmark.

    wsol-train --config=configs/synthetic_spn.py --workdir=runs/synthetic_spn

Same budget as configs/synthetic_cam.py (backbone, epochs, batch, optimizer,
seed); only the method section differs. The SPN head is a 3x3 conv to 128
channels (1024 on real data) + ReLU, SoftProposal with eps = 0.15 x the map
side (2.4 on the 16 x 16 small_cnn maps), spatial sum pooling, dropout 0.5 and
a dense classifier. `--config=configs/synthetic_spn.py:smoke` runs in seconds.
"""

from wsol_keras.configs import base
from wsol_keras.models.registry import default_method_config


def get_config(arg=None):
    config = base.base_config()
    config.method = default_method_config("spn")
    config.method.num_maps = 128
    if arg == "smoke":
        base.make_smoke(config)
    return config
