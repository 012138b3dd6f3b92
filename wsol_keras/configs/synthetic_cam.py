r"""CAM baseline on the built-in synthetic benchmark (training of the default experiment).

    wsol-train --config=configs/synthetic_cam.py --workdir=runs/cam
    wsol-train --config=configs/synthetic_cam.py --workdir=runs/cam \
        --config.train.epochs=3

`--config=configs/synthetic_cam.py:smoke` shrinks the run to seconds (tests).

The papers' regime, `--config=configs/synthetic_cam.py:finetune` (add `,smoke`
for seconds): the backbone pretrained on the procedural set
(model.weights="synthetic") fine-tuned by `base.finetune` (sgd_l2, new layers
10x, biases 2x, step decay, the same 12 epochs for every method); here
wsolevaluation's CAM recipe (0.001, 30 epochs, x0.1 every 10).
From scratch stays the default (the README's Results compare the regimes);
`--config.model.weights=none` takes `:finetune` back to a random init.
"""

from wsol_keras.configs import base


def get_config(arg=None):
    args = base.config_args(arg)
    config = base.base_config()
    config.method.name = "cam"
    if "finetune" in args:
        base.finetune(config)
    if "smoke" in args:
        base.make_smoke(config)
    return config
