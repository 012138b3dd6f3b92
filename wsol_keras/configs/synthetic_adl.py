r"""ADL (attention-based dropout) on the built-in synthetic benchmark.

    wsol-train --config=configs/synthetic_adl.py --workdir=runs/synthetic_adl

Same budget as configs/synthetic_cam.py (backbone, epochs, batch, optimizer,
seed); only the method section differs: CAM with `layers.AttentionDropout`
after the small CNN's last pool and last conv (`models.adl.ADL_LAYERS`), drop
rate 0.75 and threshold 0.9 (clovaai/wsolevaluation config.py defaults).
`--config=configs/synthetic_adl.py:smoke` runs in seconds.

The papers' regime, `--config=configs/synthetic_adl.py:finetune` (add `,smoke`
for seconds): the backbone pretrained on the procedural set
(model.weights="synthetic") fine-tuned by `base.finetune` (sgd_l2, new layers
10x, biases 2x, step decay, the same 12 epochs for every method).
`--config.model.weights=none` takes `:finetune` back to a random init.
"""

from wsol_keras.configs import base
from wsol_keras.models.registry import default_method_config


def get_config(arg=None):
    method = default_method_config("adl")
    return base.synthetic_experiment(method, arg)
