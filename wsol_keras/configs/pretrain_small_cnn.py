r"""Pretrains `small_cnn` on the procedural 240-class set (ImageNet's role).

    wsol-train --config=configs/pretrain_small_cnn.py --workdir=runs/pretrain

An ordinary run (resume, history.csv, TensorBoard) of a CAM classifier
(GAP + linear head) on `wsol_keras.data.pretrain_source`, whose classes are
disjoint from the synthetic benchmark's.  At the end it also writes
``backbone.weights.h5`` and ``backbone.json`` (sha256, config, command, val
Top-1, wall time, machine, probe features): a later run loads them with
``--config.model.weights=runs/pretrain/backbone.weights.h5``, and the file
shipped in the package with ``--config.model.weights=synthetic``.

`--config=configs/pretrain_small_cnn.py:smoke` shrinks the run to seconds.
"""

from wsol_keras.configs import base


def get_config(arg=None):
    config = base.base_config()
    config.method.name = "cam"
    config.model.backbone = "small_cnn"
    config.model.weights = None
    config.data.name = "pretrain"
    # 48 px: 1.8x fewer pixels than the benchmark's 64 px, so 1.8x more images
    # in the same time; the backbone is fully convolutional and fine-tunes at 64.
    config.data.image_size = 48
    config.data.pretrain.num_train = 10240  # images per epoch (all fresh)
    config.data.pretrain.num_val = 1000
    config.data.pretrain.num_test = 256
    config.train.epochs = 25  # 256,000 fresh images
    config.train.batch_size = 64
    config.train.optimizer = "adam"
    config.train.learning_rate = 2e-3
    config.train.lr_schedule = "cosine"
    config.train.warmup_epochs = 1
    config.train.flip = False  # fresh images in random poses
    config.train.precise_bn_batches = 32
    # A classification run: no val localization pass (the top-1 is logged).
    config.train.val_localization_every = 0
    config.train.export_backbone = True
    config.eval.max_images = 256
    config.eval.num_visualize = 8
    if arg == "smoke":
        base.make_smoke(config)
        config.data.image_size = 32
        config.data.pretrain.num_train = 32
        config.data.pretrain.num_val = 16
        config.data.pretrain.num_test = 16
    return config
