"""The experiment config every file in configs/ starts from.

Configs are code (big_vision style): `configs/<experiment>.py` defines
`get_config(arg=None)` returning an `ml_collections.ConfigDict`; the argument
`smoke` shrinks the run to seconds.  Every field can be overridden on the
command line, e.g. `--config.train.epochs=3`.
"""

import difflib

import ml_collections

from wsol_keras import data as data_lib
from wsol_keras.models.backbones import SURGERY_DEFAULTS
from wsol_keras.models.registry import default_method_config


def base_config():
    """Fields shared by all experiments, with synthetic-benchmark defaults."""
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.data = data_lib.default_data_config()

    c.model = ml_collections.ConfigDict()
    c.model.backbone = "small_cnn"
    # "imagenet" (download), "synthetic" (shipped weights pretrained on the
    # procedural set, wsol_keras.models.pretrained), None (random init) or a
    # local weights file.
    c.model.weights = ml_collections.FieldReference(None, field_type=str)
    # resnet_last_stride (1: conv5 at stride 1); resnet_large_feature_map
    # (with resnet_last_stride=1, conv4 at stride 1 too: 28x28 maps at 224,
    # wsolevaluation's --large_feature_map TRUE); vgg_large_feature_map (28x28
    # at 224, released ACoL CUB model, pool4 at stride 1); vgg_released_pools
    # (the stride-2 pools as torch's MaxPool2d(3, stride=2, padding=1), released
    # ACoL VGG16 cfg 'D1', wsolevaluation's ACoL).  Defaults: plain networks.
    # backbone="keras_hub:<preset, preset dir or class>": keras_hub_last_stride
    # (1: the last stride-2 stage at stride 1, see models/keras_hub_backbones.py;
    # 2: the preset's strides) and keras_hub_args (a class's constructor
    # arguments, a JSON object string or a dict).
    c.model.update(SURGERY_DEFAULTS)
    c.model.keras_hub_args = ""

    # The method's constructor arguments (models/registry.py); CAM by default.
    c.method = default_method_config("cam")

    c.train = ml_collections.ConfigDict()
    c.train.epochs = 12
    c.train.batch_size = 32
    # sgd_l2: the papers' torch SGD (coupled L2, per-group rates, see
    # wsol_keras.training.optimizers); sgd: Keras SGD (decoupled decay); adam; adamw.
    c.train.optimizer = "adam"
    c.train.learning_rate = 2e-3
    c.train.momentum = 0.9
    c.train.nesterov = False
    c.train.weight_decay = 0.0
    # sgd_l2 only: biases train at this x their layer's rate (released
    # get_finetune_optimizer: 2 x lr pretrained, 20 x lr new layers).
    c.train.bias_lr_multiplier = 1.0
    # sgd_l2 only: False leaves biases out of the L2 term (DGL's release).
    c.train.decay_biases = True
    c.train.lr_schedule = "cosine"  # cosine | step | constant
    c.train.lr_decay_epochs = 10  # step schedule: decay every N epochs
    c.train.lr_decay_factor = 0.1
    # step schedule: explicit epochs of each decay (e.g. DGL's (75, 100));
    # empty: every lr_decay_epochs.
    c.train.lr_decay_at_epochs = ()
    c.train.warmup_epochs = 0
    c.train.head_lr_multiplier = 1.0  # 10 when the backbone is pretrained
    # Backbone layer-name prefixes trained at head_lr_multiplier too, e.g.
    # ("conv5_",): wsolevaluation's ResNet50 puts layer4 in the 10x group.
    c.train.head_lr_backbone_prefixes = ()
    # float32 | mixed_float16 (dynamic loss scaling) | mixed_bfloat16 (no loss
    # scaling: bfloat16 has float32's exponent range).
    c.train.precision = "float32"
    # Deprecated: True means precision="mixed_float16" (kept for old commands).
    c.train.mixed_precision = False
    # "auto" is Keras' choice: XLA on a GPU/TPU (and always on JAX), off on a
    # CPU-only TensorFlow and under tf.distribute; or "true" / "false".
    c.train.jit_compile = "auto"
    # Train on random S x S crops of the image resized by this factor (the
    # papers: 224 from 256, i.e. 256 / 224); 1.0 disables cropping.
    c.train.crop_scale = 1.0
    c.train.flip = True
    c.train.steps_per_epoch = ml_collections.FieldReference(None, field_type=int)
    c.train.log_every_steps = 50
    # After fit, replace BN moving statistics by the population statistics of
    # this many training batches (precise BN, wsol_keras.training.precise_bn); 0 disables.
    # No-op for backbones without BatchNorm (vgg16).
    c.train.precise_bn_batches = 64
    # Localization (MaxBoxAccV2, or PxAP on mask-only data) on the val split
    # before training and every N epochs (and after the last), logged to
    # history.csv and TensorBoard (wsol_keras.training.checkpoint_selection); 0 disables.
    # 1: wsolevaluation scores val after every epoch, and the pass is cheap
    # next to an epoch (val is the small train-fullsup split).
    c.train.val_localization_every = 1
    # Cap on the val images of that pass (None: the whole split, as
    # wsolevaluation); heat-map images sent to TensorBoard per pass.
    c.train.val_localization_max_images = ml_collections.FieldReference(
        None, field_type=int
    )
    c.train.val_localization_images = 4
    # Weights evaluated and exported after training: "last" epoch
    # (wsolevaluation's --eval_checkpoint_type default) or "best" by the
    # val localization score (earliest epoch on ties; epoch 0 = the initial
    # weights counts, as in wsolevaluation's main.py).
    c.train.checkpoint_selection = "last"
    # After training, also write the backbone without its top and a manifest
    # (backbone.weights.h5, backbone.json: wsol_keras.training.backbone_export),
    # loadable as config.model.weights by any later run (configs/pretrain_*.py).
    c.train.export_backbone = False

    c.eval = ml_collections.ConfigDict()
    c.eval.batch_size = 64
    # None: choose on the val split by box accuracy (IoU 0.5, largest contour).
    c.eval.cam_threshold = ml_collections.FieldReference(None, field_type=float)
    c.eval.cam_threshold_step = 0.001  # wsolevaluation's cam_curve_interval
    c.eval.iou_thresholds = (30, 50, 70)
    # Map upsampling: "cv2_bicubic" (wsolevaluation's cv2.INTER_CUBIC) or "bilinear".
    c.eval.upsample = "cv2_bicubic"
    # cam | topk | dgl | pcs | gradcam | gradcam++ | xgradcam | layercam | hirescam
    # | eigencam | scorecam (wsol_keras.localization.maps.MAP_METHODS)
    c.eval.map_method = "cam"
    c.eval.topk = 1  # classes averaged by the topk map (SLT Eq. 9)
    c.eval.dgl_layer = ""  # layer path of dgl / pcs / the CAM family
    # Score-CAM: top-N channels by mean activation (N masked forwards per image).
    c.eval.scorecam_channels = 32
    c.eval.pointing_tolerance = 15
    # The papers' protocol options (wsol_keras.evaluation.protocol); the defaults are
    # wsolevaluation's. Box of Loc / CorLoc: largest_contour | spn | danet_union.
    c.eval.box_method = "largest_contour"
    # fixed: maps and boxes at data.image_size; original: at each image's size.
    c.eval.image_size_mode = "fixed"
    # Ten-crop classification of the original image
    # resized to ten_crop_resize (None: image_size * 256 / 224).
    c.eval.ten_crop = False
    c.eval.ten_crop_resize = ml_collections.FieldReference(None, field_type=int)
    # With ten_crop: "single" maps of the single S x S image (DGL Sec. 4.2,
    # SLT-Net Sec. 4.1) or "average" of the ten crops' maps pasted back.
    c.eval.ten_crop_maps = "single"
    c.eval.num_visualize = 16
    c.eval.max_images = ml_collections.FieldReference(None, field_type=int)
    # Locked: assigning a field that does not exist (a typo) raises instead of
    # adding a field nothing reads.
    c.lock()
    return c


def cub_vgg16_config(method_config):
    """CUB-200-2011 with an ImageNet VGG16, the setting shared by the papers.

    Input 224 cropped from 256 (`crop_scale` 256/224).  Optimizer of the
    released ACoL / DANet code (exper/my_optim.py get_finetune_optimizer):
    torch SGD, momentum 0.9, coupled L2 weight decay 5e-4, new layers at 10x
    and biases at 2x their layer's rate (`sgd_l2`, wsol_keras.training.optimizers);
    each configs/cub_vgg16_<method>.py then sets its paper's schedule,
    Nesterov and groups.

    Args:
        method_config: the method's ConfigDict
            (`models.registry.default_method_config(name)`).
    """
    c = base_config()
    c.data.name = "cub"
    c.data.root = ""  # set --config.data.root
    c.data.image_size = 224
    c.model.backbone = "vgg16"
    c.model.weights = "imagenet"
    c.method = method_config
    c.train.optimizer = "sgd_l2"
    c.train.momentum = 0.9
    c.train.weight_decay = 5e-4
    c.train.head_lr_multiplier = 10.0
    c.train.bias_lr_multiplier = 2.0
    c.train.crop_scale = 256 / 224
    c.eval.batch_size = 32
    return c


# Words a synthetic_<method>.py config takes after ":" (comma-separated, any
# order): `--config=synthetic_cam:finetune,smoke`.
CONFIG_ARGS = ("smoke", "finetune")

# The fine-tuning recipe of every synthetic_<method>.py:finetune (`finetune`).
FINETUNE_LEARNING_RATE = 0.002
FINETUNE_DECAY_AT_EPOCHS = (8, 10)
# SLT-Net's localizer and regressor train at this fraction of the base rate
# (SLT Sec. 4.1: 0.0002 against its classifier's 0.001).
SLT_LOCALIZER_RATE_FRACTION = 0.2


def config_args(arg, allowed=CONFIG_ARGS):
    """The words of a config argument (``path.py:finetune,smoke``) as a set.

    Args:
        arg: what ``--config=<config>:<arg>`` passes to ``get_config`` (None
            or "" when there is no argument).
        allowed: the words this config understands.

    Raises:
        ValueError: a word that is not in `allowed` (a typo would otherwise
            run the default experiment).
    """
    if arg is None:
        return frozenset()
    words = [w.strip() for w in str(arg).split(",") if w.strip()]
    unknown = [w for w in words if w not in allowed]
    if unknown:
        close = difflib.get_close_matches(unknown[0], allowed, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(
            f"config argument {str(arg)!r}: {unknown[0]!r} is not one of "
            f"{', '.join(allowed)}{hint}; words are comma-separated, e.g. "
            "':finetune,smoke'"
        )
    return frozenset(words)


def finetune(config):
    """Switches a synthetic-benchmark `config` in place to the papers' regime:
    a pretrained backbone fine-tuned with new heads at 10x its rate.

    Every paper fine-tunes an ImageNet backbone with the released torch SGD
    (``get_finetune_optimizer`` of ACoL / DANet, wsolevaluation's
    ``_set_optimizer``): momentum 0.9, coupled L2 weight decay 5e-4 on every
    group, pretrained weights at lr, pretrained biases at 2 x lr, new layers
    at 10 x lr and their biases at 20 x lr, Nesterov (wsolevaluation, ACoL,
    DANet, DGL), step decay x0.1.  Their rates and budgets on CUB: CAM
    (wsolevaluation) 0.001 for 30 epochs, x0.1 every 10; SPN (released) one
    group at 0.01 for 20 epochs, x0.1 every 10; ACoL 1e-4 constant for 60;
    DANet 0.001 for 100, x0.1 at 80; DGL (Tan et al. 2020, Sec. 4.1) 0.002 for
    125, x0.1 at 75 and 100.

    Scaled to this benchmark with one budget for every method: the weights
    pretrained on the procedural set (``model.weights="synthetic"``), the
    epochs and batch of the from-scratch configs (12 x 32), base rate 0.002
    (DGL's; the new layers at 0.02), x0.1 at epochs 8 and 10 (2/3 and 5/6 of
    the budget: wsolevaluation CAM's second decay at 20/30, DGL's at 0.6 /
    0.8, DANet's at 0.8).  The rate stays in the papers' range and below
    SPN's single group: at 0.01 (new layers at 0.1) CAM on this backbone ends
    its first epoch at a val loss of 11.  A run with another
    ``--config.train.epochs`` should move ``--config.train.lr_decay_at_epochs``
    with it; ``--config.model.weights=none`` is the way back to a random
    initialization (keep the optimizer or take the config without
    ``:finetune``).

    The from-scratch configs stay the default: fine-tuned from the shipped
    backbone (val Top-1 59.6% on the 240 procedural classes) every method
    classifies about as well as CAM, but at this budget the default experiment
    (CAM with DGL maps) localizes better from scratch (test MaxBoxAccV2 50.9,
    one seed, against 41.1 +- 1.4 fine-tuned over three; the README's Results,
    tools/regime_sweep.py).

    Args:
        config: a `base_config` ConfigDict (changed in place and returned).
    """
    config.model.weights = "synthetic"
    t = config.train
    t.optimizer = "sgd_l2"
    t.learning_rate = FINETUNE_LEARNING_RATE
    t.momentum = 0.9
    t.nesterov = True
    t.weight_decay = 5e-4
    t.decay_biases = True
    t.head_lr_multiplier = 10.0
    t.bias_lr_multiplier = 2.0
    t.lr_schedule = "step"
    t.lr_decay_at_epochs = FINETUNE_DECAY_AT_EPOCHS
    t.lr_decay_factor = 0.1
    t.warmup_epochs = 0
    return config


def synthetic_experiment(method_config, arg=None):
    """The synthetic-benchmark experiment of `method_config`, with the words
    of its config argument applied: ``finetune`` (`finetune`) and ``smoke``
    (`make_smoke`).

    Args:
        method_config: the method's ConfigDict (`default_method_config(name)`,
            with the experiment's own values set).
        arg: the config argument (``"finetune,smoke"``, None).
    """
    args = config_args(arg)
    config = base_config()
    config.method = method_config
    if "finetune" in args:
        finetune(config)
    if "smoke" in args:
        make_smoke(config)
    return config


def make_smoke(config):
    """Shrinks `config` in place to a run of seconds (tests, CI)."""
    config.train.epochs = 1
    config.train.batch_size = 8
    config.train.steps_per_epoch = 2
    config.train.precise_bn_batches = 2
    config.train.val_localization_max_images = 16
    config.eval.batch_size = 8
    config.eval.max_images = 16
    config.eval.num_visualize = 4
    if config.data.name == "synthetic":
        config.data.synthetic.num_train = 32
        config.data.synthetic.num_val = 16
        config.data.synthetic.num_test = 16
    return config


def wsolevaluation_config(backbone, conv_filters):
    """CAM trained as clovaai/wsolevaluation's ``main.py`` runs it.

    Values typed from that repository (Choe et al., "Evaluating Weakly
    Supervised Object Localization Methods Right", CVPR 2020): input resized to
    256 and cropped to 224 (``config.py`` ``--resize_size 256 --crop_size
    224``); ``main.py`` ``_set_optimizer``: ``torch.optim.SGD`` with momentum 0.9,
    ``nesterov=True`` and ``weight_decay`` (coupled L2 on every parameter,
    biases included: ``sgd_l2``), the new layers at ``--lr_classifier_ratio``
    10x the features' rate, no bias group; ``adjust_learning_rate``: x0.1 every
    ``--lr_decay_frequency`` epochs; CAM curve interval 0.001, MaxBoxAccV2 IoU
    thresholds 30/50/70. The data is wsolevaluation's metadata layout
    (``metadata/<DATASET>/{train,val,test}``), whose ``val`` folder is the
    ``train-fullsup`` split the threshold is chosen on. Each dataset's config
    sets its batch size, epochs, rate, decay frequency and weight decay.

    Args:
      backbone: "vgg16" | "resnet50" | "inception_v3".
      conv_filters: the CAM head's 3x3 convs before the classifier as in
        wsolevaluation's ``wsol/<arch>.py`` CAM models.
    """
    c = base_config()
    c.data.name = "wsol_metadata"
    c.data.root = ""  # --config.data.root=dataset/<DATASET>
    c.data.metadata = ""  # --config.data.metadata=metadata/<DATASET>
    c.data.image_size = 224
    # Decoding 1.2M images once before the first step takes hours on a small
    # host: undecodable images are dropped inside tf.data instead (TF logs each).
    c.data.validate_images = False
    c.model.backbone = backbone
    c.model.weights = "imagenet"
    c.method = default_method_config("cam")
    c.method.conv_filters = tuple(conv_filters)
    c.train.optimizer = "sgd_l2"
    c.train.momentum = 0.9
    c.train.nesterov = True
    c.train.bias_lr_multiplier = 1.0
    c.train.decay_biases = True
    c.train.head_lr_multiplier = 10.0
    c.train.lr_schedule = "step"
    c.train.lr_decay_factor = 0.1
    c.train.crop_scale = 256 / 224
    c.eval.cam_threshold_step = 0.001
    c.eval.iou_thresholds = (30, 50, 70)
    c.eval.batch_size = 64
    return c


def ilsvrc_cam_config(backbone, conv_filters, learning_rate, weight_decay):
    """CAM on ILSVRC 2012 as clovaai/wsolevaluation trains it (any architecture).

    Data: wsolevaluation's layout (its README, "Prepare train+eval datasets /
    ImageNet"): ``train`` = ImageNet "train" (train-weaksup, 1,000 classes),
    ``val`` = ImageNetV2 threshold-0.7 with the boxes wsolevaluation annotated
    (train-fullsup, 10 images per class; the CAM threshold is chosen there),
    ``test`` = ImageNet "val". Images are only listed at start-up (no decode
    pass: ``data.validate_images=False``), so training starts in seconds.

    Training: batch 32, 10 epochs, rate x0.1 every 3 epochs (``--batch_size 32
    --epochs 10 --lr_decay_frequency 3``), the shape of the README's train+eval
    command and of the ILSVRC rows of the hyperparameter spreadsheet its README
    links ("More detailed results and corresponding hyperparameter sets"); the
    spreadsheet is not in the repository, so the per-architecture rate and
    weight decay each config passes are those rows as copied into public
    wsolevaluation training scripts (cited in each config). ``config.py``'s own
    defaults (batch 64, 40 epochs, lr 0.01 decayed every 30, wd 1e-4) are
    argparse placeholders (its default architecture, resnet18, is not even
    supported), not the tuned protocol.

    Args:
      backbone: "vgg16" | "resnet50" | "inception_v3".
      conv_filters: the CAM head's 3x3 convs (see `wsolevaluation_config`).
      learning_rate: the features' rate (``--lr``).
      weight_decay: ``--weight_decay``.
    """
    c = wsolevaluation_config(backbone, conv_filters)
    c.train.batch_size = 32
    c.train.epochs = 10
    c.train.learning_rate = float(learning_rate)
    c.train.lr_decay_epochs = 3
    c.train.weight_decay = float(weight_decay)
    return c
