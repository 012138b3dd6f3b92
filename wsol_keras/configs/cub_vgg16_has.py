r"""Hide-and-Seek on CUB-200-2011 with VGG16 (Singh & Lee, ICCV 2017; wsolevaluation).

    wsol-train --config=configs/cub_vgg16_has.py --workdir=runs/cub_vgg16_has \
            --config.data.root=/data/CUB_200_2011

CAM trained on images with hidden 4 x 4 patches (`--has_grid_size` 4), each
hidden with probability 0.5 (`--has_drop_rate`; the paper's p_hide, Sec. 3.1)
and filled with the ImageNet mean (wsolevaluation's 0 after normalization;
Sec. 3.2's mean pixel).  The paper's HaS-mixed patch sizes:
``--config.method.patch_sizes="(0, 16, 32, 44, 56)"``.

Training as configs/cub_vgg16_cam.py (`wsolevaluation_vgg16_cam`: wsolevaluation's
VGG16 CAM setting on CUB).  The method's own values are wsolevaluation
config.py's defaults; its per-method tuned CUB rows are in a spreadsheet its
README links, outside the repository.
"""

from wsol_keras.configs.cub_vgg16_cam import wsolevaluation_vgg16_cam
from wsol_keras.models.registry import default_method_config


def get_config(arg=None):
    method = default_method_config("has")
    method.patch_sizes = (4,)  # config.py --has_grid_size
    return wsolevaluation_vgg16_cam(method, arg)
