r"""SLT-Net on the built-in synthetic benchmark (same budget as synthetic_cam.py).

    wsol-train --config=configs/synthetic_slt.py --workdir=runs/synthetic_slt

`--config=configs/synthetic_slt.py:smoke` shrinks the run to seconds (tests).

The synthetic benchmark has 4 body groups x 2 leaf classes that differ only by
a small part, so K=2 tolerates confusing a class with its sibling (the
"similar categories" of SLT-Net Sec. 3.3); alpha=0.4 and beta=10 as in the
paper's CUB setting. Localization is evaluated on the top-K averaged map
(Eq. 9) for MaxBoxAccV2 and on the regressor's boxes for the Loc metrics.

The papers' regime, `--config=configs/synthetic_slt.py:finetune` (add `,smoke`
for seconds): the backbone pretrained on the procedural set
(model.weights="synthetic") fine-tuned by `base.finetune` (sgd_l2, new layers
10x, biases 2x, step decay, the same 12 epochs for every method); here
the classifier in its own phase-1 run on the common recipe, localizer and
regressor at a fifth of its rate, constant, one group (SLT Sec. 3.1, 4.1;
`finetune_slt`).
From scratch stays the default (the README's Results compare the regimes);
`--config.model.weights=none` takes `:finetune` back to a random init.
"""

from wsol_keras.configs import base
from wsol_keras.models.registry import default_method_config


def get_config(arg=None):
    args = base.config_args(arg)
    config = base.base_config()
    config.method = default_method_config("slt")
    config.method.k = 2
    config.method.alpha = 0.4
    config.method.beta = 10.0
    config.method.regressor_hidden = 256
    config.eval.map_method = "topk"
    config.eval.topk = 2
    if "finetune" in args:
        finetune_slt(config)
    if "smoke" in args:
        base.make_smoke(config)
        if config.method.classifier_train.epochs:
            config.method.classifier_train.epochs = 1
            config.method.classifier_train.batch_size = config.train.batch_size
    return config


def finetune_slt(config):
    """SLT-Net's fine-tuning recipe scaled to the benchmark (`base.finetune`).

    Classifier (Sec. 3.1, Fig. 2b: "trained independently"): its own run,
    phase 1 of wsol-train, on the common recipe of `base.finetune` (the paper
    gives no schedule; configs/cub_vgg16_slt.py takes DANet's released CUB
    CAM-VGG16 one, the recipe `base.finetune` scales), GAP head.
    Localizer and regressor (Sec. 4.1: "low learning rate", 0.0002 for 4
    epochs, one rate for every variable, against the classifier's 0.001):
    the base rate x `base.SLT_LOCALIZER_RATE_FRACTION` (0.0004), constant,
    heads and biases 1x, over the common budget; rate x steps is about the
    paper's (600 x 0.0004 here, 1500 x 0.0002 on CUB at batch 16).

    Args:
        config: the synthetic SLT ConfigDict (changed in place).
    """
    base.finetune(config)
    t = config.train
    schedule = config.method.classifier_train
    schedule.epochs = t.epochs
    schedule.batch_size = t.batch_size
    schedule.learning_rate = t.learning_rate
    schedule.lr_schedule = t.lr_schedule
    schedule.lr_decay_at_epochs = tuple(t.lr_decay_at_epochs)
    schedule.lr_decay_factor = t.lr_decay_factor
    schedule.head_lr_multiplier = t.head_lr_multiplier
    schedule.bias_lr_multiplier = t.bias_lr_multiplier
    schedule.nesterov = t.nesterov
    t.learning_rate = base.FINETUNE_LEARNING_RATE * base.SLT_LOCALIZER_RATE_FRACTION
    t.lr_schedule = "constant"
    t.head_lr_multiplier = 1.0
    t.bias_lr_multiplier = 1.0
    return config
