r"""CutMix on the built-in synthetic benchmark.

    wsol-train --config=configs/synthetic_cutmix.py --workdir=runs/synthetic_cutmix

Same budget as configs/synthetic_cam.py (backbone, epochs, batch, optimizer,
seed); only the method section differs: CAM trained on CutMix batches
(`wsol_keras.data.cutmix`, beta 1.0, every batch mixed: clovaai/wsolevaluation
config.py defaults) with the lam-weighted two-label cross-entropy.
`--config=configs/synthetic_cutmix.py:smoke` runs in seconds.

The papers' regime, `--config=configs/synthetic_cutmix.py:finetune` (add
`,smoke` for seconds): the backbone pretrained on the procedural set
(model.weights="synthetic") fine-tuned by `base.finetune` (sgd_l2, new layers
10x, biases 2x, step decay, the same 12 epochs for every method).
`--config.model.weights=none` takes `:finetune` back to a random init.
"""

from wsol_keras.configs import base
from wsol_keras.models.registry import default_method_config


def get_config(arg=None):
    method = default_method_config("cutmix")
    return base.synthetic_experiment(method, arg)
