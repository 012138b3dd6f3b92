r"""CutMix on CUB-200-2011 with VGG16 (Yun et al., ICCV 2019; wsolevaluation).

    wsol-train --config=configs/cub_vgg16_cutmix.py --workdir=runs/cub_vgg16_cutmix \
            --config.data.root=/data/CUB_200_2011

CAM trained on CutMix batches: lam ~ Beta(1, 1) (`--cutmix_beta` 1.0), every
batch mixed (`--cutmix_prob` 1.0), loss lam CE(y_A) + (1 - lam) CE(y_B) with
lam the exact unmixed area (main.py `_wsol_training`).

Training as configs/cub_vgg16_cam.py (`wsolevaluation_vgg16_cam`: wsolevaluation's
VGG16 CAM setting on CUB).  The method's own values are wsolevaluation
config.py's defaults; its per-method tuned CUB rows are in a spreadsheet its
README links, outside the repository.
"""

from wsol_keras.configs.cub_vgg16_cam import wsolevaluation_vgg16_cam
from wsol_keras.models.registry import default_method_config


def get_config(arg=None):
    method = default_method_config("cutmix")
    return wsolevaluation_vgg16_cam(method, arg)
