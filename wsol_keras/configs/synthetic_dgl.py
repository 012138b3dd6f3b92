r"""The default experiment: CAM training, localization by Dual-Gradients (DGL).

  wsol-train --workdir=runs/demo            # this config is the default
  wsol-train --config=configs/synthetic_dgl.py --workdir=runs/dgl

Training is exactly configs/synthetic_cam.py's (DGL needs no retraining, Tan et
al. ACM MM 2020 Sec. 3); only the evaluation maps differ: DGL maps (Eq. 7-8,
alpha = 10) of `stage3_relu1`, the first conv of the small CNN's last stage.
That layer was chosen on the *val* split with the layer sweep (DGL Table 1)

  wsol-eval --workdir=runs/cam --split=val \
      --sweep_layers=backbone/small_cnn_features/stage2_pool,backbone/small_cnn_features/stage3_relu1,...

and localizes best of all methods on the synthetic benchmark (README table).

The papers' regime, `--config=configs/synthetic_dgl.py:finetune` (add `,smoke`
for seconds): the backbone pretrained on the procedural set
(model.weights="synthetic") fine-tuned by `base.finetune` (sgd_l2, new layers
10x, biases 2x, step decay, the same 12 epochs for every method); here
the fine-tuned CAM of configs/synthetic_cam.py:finetune (DGL needs no
retraining), DGL maps of the same layer.
From scratch stays the default (the README's Results compare the regimes);
`--config.model.weights=none` takes `:finetune` back to a random init.
"""

from wsol_keras.configs import base


def get_config(arg=None):
    args = base.config_args(arg)
    config = base.base_config()
    config.method.name = "cam"
    config.eval.map_method = "dgl"
    config.eval.dgl_layer = "backbone/small_cnn_features/stage3_relu1"
    if "finetune" in args:
        base.finetune(config)
    if "smoke" in args:
        base.make_smoke(config)
    return config
