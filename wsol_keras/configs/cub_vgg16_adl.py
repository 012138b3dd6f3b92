r"""ADL on CUB-200-2011 with VGG16 (Choe & Shim, CVPR 2019; wsolevaluation).

    wsol-train --config=configs/cub_vgg16_adl.py --workdir=runs/cub_vgg16_adl \
            --config.data.root=/data/CUB_200_2011

`layers.AttentionDropout` after pool3, conv4_3 and conv5_3 (wsolevaluation
wsol/vgg.py configs_dict 'adl' '14x14': 2x2 pools, no pool5, 14x14 maps),
drop rate 0.75 (`--adl_drop_rate`), threshold gamma 0.9 (`--adl_threshold`).

Training as configs/cub_vgg16_cam.py (`wsolevaluation_vgg16_cam`: wsolevaluation's
VGG16 CAM setting on CUB).  The method's own values are wsolevaluation
config.py's defaults; its per-method tuned CUB rows are in a spreadsheet its
README links, outside the repository.
"""

from wsol_keras.configs.cub_vgg16_cam import wsolevaluation_vgg16_cam
from wsol_keras.models.registry import default_method_config


def get_config(arg=None):
    method = default_method_config("adl")
    return wsolevaluation_vgg16_cam(method, arg)
