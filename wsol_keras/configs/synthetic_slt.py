r"""SLT-Net on the built-in synthetic benchmark (same budget as synthetic_cam.py).

    wsol-train --config=configs/synthetic_slt.py --workdir=runs/synthetic_slt

`--config=configs/synthetic_slt.py:smoke` shrinks the run to seconds (tests).

The synthetic benchmark has 4 body groups x 2 leaf classes that differ only by
a small part, so K=2 tolerates confusing a class with its sibling (the
"similar categories" of SLT-Net Sec. 3.3); alpha=0.4 and beta=10 as in the
paper's CUB setting. Localization is evaluated on the top-K averaged map
(Eq. 9) for MaxBoxAccV2 and on the regressor's boxes for the Loc metrics.
"""

from wsol_keras.configs import base
from wsol_keras.models.registry import default_method_config


def get_config(arg=None):
    config = base.base_config()
    config.method = default_method_config("slt")
    config.method.k = 2
    config.method.alpha = 0.4
    config.method.beta = 10.0
    config.method.regressor_hidden = 256
    config.eval.map_method = "topk"
    config.eval.topk = 2
    if arg == "smoke":
        base.make_smoke(config)
    return config
