r"""CAM on ILSVRC 2012 with InceptionV3, as clovaai/wsolevaluation trains it.

    wsol-train --config=configs/ilsvrc_inceptionv3_cam.py --workdir=runs/ilsvrc_inceptionv3_cam \
        --config.data.root=dataset/ILSVRC --config.data.metadata=metadata/ILSVRC

Data: wsolevaluation's layout (its README, "Prepare train+eval datasets /
ImageNet"): ``train`` = ImageNet "train" (train-weaksup, 1,000 classes),
``val`` = ImageNetV2 threshold-0.7 with the boxes wsolevaluation annotated
(train-fullsup, 10 images per class; the CAM threshold is chosen there),
``test`` = ImageNet "val". Images are only listed at start-up (no decode pass:
``data.validate_images=False``), so training starts in seconds.

Training: the defaults of wsolevaluation's ``config.py`` (what ``python main.py
--dataset_name ILSVRC --architecture inception_v3 --wsol_method cam`` runs):
batch 64, 40 epochs, learning rate 0.01 with the classifier at 10x
(``--lr_classifier_ratio``), x0.1 every 30 epochs, momentum 0.9, weight decay
1e-4, resize 256 / crop 224, CAM curve interval 0.001. The per-architecture
rates wsolevaluation tuned on train-fullsup are published in a spreadsheet
linked from its README, not in the repository: pass them with
``--config.train.learning_rate=...`` (and epochs / decay) to match a row.

InceptionV3 CAM head as wsolevaluation's ``wsol/inception.py``: two 3x3
convs to 1024 channels (its SPG_A3 blocks) after Mixed_6e, then the 1x1
classifier.
"""

from wsol_keras.configs import base


def get_config(arg=None):
    config = base.wsolevaluation_config("inception_v3", (1024, 1024))
    config.train.batch_size = 64
    config.train.epochs = 40
    config.train.learning_rate = 0.01
    config.train.lr_decay_epochs = 30
    config.train.weight_decay = 1e-4
    if arg == "smoke":
        base.make_smoke(config)
    return config
