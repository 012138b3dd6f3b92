r"""Hide-and-Seek on the built-in synthetic benchmark.

    wsol-train --config=configs/synthetic_has.py --workdir=runs/synthetic_has

Same budget as configs/synthetic_cam.py (backbone, epochs, batch, optimizer,
seed); only the method section differs: CAM trained on images whose 8 x 8
patches are each hidden with probability 0.5 (`layers.HideAndSeek`; 8 pixels
of the 64-pixel images is the paper's S = 32 at 224 scaled down), filled with
the ImageNet mean.  `--config=configs/synthetic_has.py:smoke` runs in seconds.

The papers' regime, `--config=configs/synthetic_has.py:finetune` (add `,smoke`
for seconds): the backbone pretrained on the procedural set
(model.weights="synthetic") fine-tuned by `base.finetune` (sgd_l2, new layers
10x, biases 2x, step decay, the same 12 epochs for every method).
`--config.model.weights=none` takes `:finetune` back to a random init.
"""

from wsol_keras.configs import base
from wsol_keras.models.registry import default_method_config


def get_config(arg=None):
    method = default_method_config("has")
    method.patch_sizes = (8,)
    return base.synthetic_experiment(method, arg)
