r"""DANet on the built-in synthetic benchmark (its own 3-level hierarchy).

    wsol-train --config=configs/synthetic_danet.py --workdir=runs/synthetic_danet

Same budget as configs/synthetic_cam.py (backbone, epochs, batch, optimizer,
seed); only the method section differs. The synthetic classes have a two-level
ancestry (group = body shape, supergroup = round / angular), so three heads:
supergroups on stage1_pool, groups on stage2_pool, leaves on stage3 of
small_cnn, each one 3x3 conv (64 / 128 / 128 channels) then K = 8 maps per
class; HDA weights 0.5 per level, DDA lambda = 0.01 on half of the 3K maps.
`--config=configs/synthetic_danet.py:smoke` runs in seconds.

The papers' regime, `--config=configs/synthetic_danet.py:finetune` (add `,smoke`
for seconds): the backbone pretrained on the procedural set
(model.weights="synthetic") fine-tuned by `base.finetune` (sgd_l2, new layers
10x, biases 2x, step decay, the same 12 epochs for every method); here
DANet's released 0.001 (100 epochs, x0.1 at 80, Nesterov) scaled.
From scratch stays the default (the README's Results compare the regimes);
`--config.model.weights=none` takes `:finetune` back to a random init.
"""

from wsol_keras.configs import base
from wsol_keras.models.registry import default_method_config


def get_config(arg=None):
    method = default_method_config("danet")
    method.conv_filters = ((64,), (128,), (128,))
    return base.synthetic_experiment(method, arg)
