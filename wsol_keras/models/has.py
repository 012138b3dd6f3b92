"""HaS: CAM trained on images with hidden patches (Singh & Lee, ICCV 2017).

Paper: "Hide-and-Seek: Forcing a Network to be Meticulous for
Weakly-supervised Object and Action Localization" (Singh & Lee), Sec. 3.1-3.2:
random S x S patches of each training image are hidden (p_hide 0.5, filled
with the mean pixel); the network is a plain CAM network (Sec. 3.1: "GAP"
architecture) and nothing is hidden at test time.  `layers.HideAndSeek` does
the hiding on the model input, in the graph: clovaai/wsolevaluation main.py
`_wsol_training` applies `wsol.method.has` to each training batch and trains
its CAM architecture (config.py `get_architecture_type`: 'has' -> 'cam').
"""

from wsol_keras.layers.hide_and_seek import IMAGENET_MEAN_RGB, HideAndSeek
from wsol_keras.models.cam import CAMModel


class HaSModel(CAMModel):
    """`HideAndSeek` on the training images, then CAM.

    Args:
        backbone: feature extractor (`build_backbone`).
        num_classes: C.
        patch_sizes: S in pixels, one drawn per image (wsolevaluation
            `--has_grid_size` 4; the paper's HaS-mixed: (0, 16, 32, 44, 56)).
        hide_prob: p_hide (`--has_drop_rate` 0.5; Sec. 3.1).
        fill_value: RGB of hidden pixels in [0, 255] (ImageNet mean: Sec. 3.2's
            dataset mean as wsolevaluation's normalized 0).
        conv_filters, classifier_init_stddev: `CAMModel`'s head.
        seed: seed of the hiding (config.seed).
        **kwargs: `WSOLModel` arguments.
    """

    def __init__(
        self,
        backbone,
        num_classes,
        patch_sizes=(4,),
        hide_prob=0.5,
        fill_value=IMAGENET_MEAN_RGB,
        conv_filters=(),
        classifier_init_stddev: float | None = None,
        seed=None,
        **kwargs,
    ):
        super().__init__(
            backbone,
            num_classes,
            conv_filters=conv_filters,
            classifier_init_stddev=classifier_init_stddev,
            **kwargs,
        )
        self.hide = HideAndSeek(
            patch_sizes=patch_sizes,
            hide_prob=hide_prob,
            fill_value=fill_value,
            seed=seed,
            name="hide_and_seek",
        )

    def forward(self, images, labels=None, hierarchy=None, training=None):
        images = self.hide(images, training=training)
        return super().forward(images, labels, hierarchy, training)
