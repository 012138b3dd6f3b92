r"""SPN (Soft Proposal Networks) on the built-in synthetic benchmark.

    wsol-train --config=configs/synthetic_spn.py --workdir=runs/synthetic_spn

Same budget as configs/synthetic_cam.py (backbone, epochs, batch, optimizer,
seed); only the method section differs. The SPN head is a 3x3 conv to 128
channels (1024 on real data) + ReLU, SoftProposal with eps = 0.15 x the map
side (2.4 on the 16 x 16 small_cnn maps), spatial sum pooling, dropout 0.5 and
a dense classifier. `--config=configs/synthetic_spn.py:smoke` runs in seconds.

The papers' regime, `--config=configs/synthetic_spn.py:finetune` (add `,smoke`
for seconds): the backbone pretrained on the procedural set
(model.weights="synthetic") fine-tuned by `base.finetune` (sgd_l2, new layers
10x, biases 2x, step decay, the same 12 epochs for every method); here
SPN's released single group at 0.01 (20 epochs, x0.1 every 10) becomes the
common groups (the new layers at 10 x 0.002).
From scratch stays the default (the README's Results compare the regimes);
`--config.model.weights=none` takes `:finetune` back to a random init.
"""

from wsol_keras.configs import base
from wsol_keras.models.registry import default_method_config


def get_config(arg=None):
    method = default_method_config("spn")
    method.num_maps = 128
    return base.synthetic_experiment(method, arg)
