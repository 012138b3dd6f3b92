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
"""

from wsol_keras.configs import base


def get_config(arg=None):
    config = base.base_config()
    config.method.name = "cam"
    config.eval.map_method = "dgl"
    config.eval.dgl_layer = "backbone/small_cnn_features/stage3_relu1"
    if arg == "smoke":
        base.make_smoke(config)
    return config
