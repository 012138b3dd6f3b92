r"""DANet on the built-in synthetic benchmark (its own 3-level hierarchy).

    wsol-train --config=configs/synthetic_danet.py --workdir=runs/synthetic_danet

Same budget as configs/synthetic_cam.py (backbone, epochs, batch, optimizer,
seed); only the method section differs. The synthetic classes have a two-level
ancestry (group = body shape, supergroup = round / angular), so three heads:
supergroups on stage1_pool, groups on stage2_pool, leaves on stage3 of
small_cnn, each one 3x3 conv (64 / 128 / 128 channels) then K = 8 maps per
class; HDA weights 0.5 per level, DDA lambda = 0.01 on half of the 3K maps.
`--config=configs/synthetic_danet.py:smoke` runs in seconds.
"""

from wsol_keras.configs import base
from wsol_keras.models.registry import default_method_config


def get_config(arg=None):
    config = base.base_config()
    config.method = default_method_config("danet")
    config.method.conv_filters = ((64,), (128,), (128,))
    if arg == "smoke":
        base.make_smoke(config)
    return config
