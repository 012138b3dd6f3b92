r"""CAM on OpenImages30k with VGG16 (PxAP), as clovaai/wsolevaluation trains it.

    wsol-train --config=configs/openimages_vgg16_cam.py \
        --workdir=runs/openimages_vgg16_cam \
        --config.data.root=dataset/OpenImages \
        --config.data.metadata=metadata/OpenImages

Data: wsolevaluation's layout (README, "OpenImages"): 100 classes, ``train``
(29,819 images, train-weaksup), ``val`` (2,500, train-fullsup) and ``test``
(5,000), localization as instance masks plus an ignore mask per image
(``localization.txt``: ``image,mask,ignore``; mask paths relative to
``data.mask_root``, default ``data.root`` as wsolevaluation's
``--mask_root dataset/`` + "OpenImages"). Instance masks are OR-ed, ignore
pixels that are not foreground become 255 and are left out of PxAP.

Training: the README's train+eval example command (``--dataset_name
OpenImages --architecture vgg16 --wsol_method cam``): batch 32, 10 epochs,
learning rate 0.00227913316, ``--lr_decay_frequency 3``, weight decay 5e-4,
``--large_feature_map FALSE``; the rest from ``config.py`` and ``main.py``
(`base.wsolevaluation_config`): classifier at 10x, torch SGD with momentum 0.9,
Nesterov and coupled L2, resize 256 / crop 224, CAM curve interval 0.001. The example's
``--num_val_sample_per_class 5`` subsamples train-fullsup; this source uses the
whole ``val`` folder (``config.py``'s default 0 = all).
"""

from wsol_keras.configs import base


def get_config(arg=None):
    config = base.wsolevaluation_config("vgg16", (1024,))
    config.train.batch_size = 32
    config.train.epochs = 10
    config.train.learning_rate = 0.00227913316
    config.train.lr_decay_epochs = 3
    config.train.weight_decay = 5e-4
    if arg == "smoke":
        base.make_smoke(config)
    return config
