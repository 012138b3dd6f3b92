r"""ACoL on the built-in synthetic benchmark.

    wsol-train --config=configs/synthetic_acol.py --workdir=runs/synthetic_acol

Same budget as configs/synthetic_cam.py (backbone, epochs, batch, optimizer,
seed); only the method section differs: two classifiers with one 3x3 conv to
128 channels each (two 3x3 convs to 1024 on real data) and erasing threshold
delta = 0.6 (released code). `--config=configs/synthetic_acol.py:smoke` runs in
seconds.

The papers' regime, `--config=configs/synthetic_acol.py:finetune` (add `,smoke`
for seconds): the backbone pretrained on the procedural set
(model.weights="synthetic") fine-tuned by `base.finetune` (sgd_l2, new layers
10x, biases 2x, step decay, the same 12 epochs for every method); here
ACoL's released 1e-4 (constant, 60 epochs, new layers 10x, biases 2x)
becomes the common rate and step decay.
From scratch stays the default (the README's Results compare the regimes);
`--config.model.weights=none` takes `:finetune` back to a random init.
"""

from wsol_keras.configs import base
from wsol_keras.models.registry import default_method_config


def get_config(arg=None):
    method = default_method_config("acol")
    method.conv_filters = (128,)
    return base.synthetic_experiment(method, arg)
