"""Model outputs -> the per-image localization map: the one map path.

`Localizer` turns a batch of images (and the model's outputs on them) into
float32 maps [B, S, S] in [0, 1] for every map method and every model of
`wsol_keras.methods.METHODS`. The evaluator (`wsol-eval`), the DGL layer sweep,
the SavedModel signatures and the TFLite graph all call it, so the map that is
exported is the map that was evaluated.

Map methods (`MAP_METHODS`):
    * ``"cam"``: the class map of the given class (Zhou et al., "Learning Deep
      Features for Discriminative Localization", CVPR 2016, Eq. 2 / Sec. 2);
    * ``"topk"``: the mean class map of the K best-ranked classes, "top-K
      ACAM" (Guo et al., "Strengthen Learning Tolerance for Weakly Supervised
      Object Localization", CVPR 2022, Eq. 9). Classes are ranked by the
      localizer's own logits (``outputs["localizer_logits"]``, SLT-Net's
      localizer) when the model has them, else by ``outputs["logits"]``; K is
      an int or a fraction of C (`resolve_top_k`). The given class ids do not
      enter this map;
    * ``"dgl"``, ``"pcs"``, ``"gradcam"``: gradient maps on one layer (Tan et
      al., "Dual-Gradients Localization Framework for Weakly Supervised Object
      Localization", ACM MM 2020, Eq. 8 and Eq. 5; Selvaraju et al.,
      "Grad-CAM", ICCV 2017, Eq. 1-2), see `wsol_keras.localization.dual_gradient`;
    * ``"gradcam++"``, ``"xgradcam"``, ``"layercam"``, ``"hirescam"`` (one
      forward, one backward), ``"eigencam"`` (one forward, no gradients) and
      ``"scorecam"`` (one forward plus ``scorecam_channels`` masked forward
      passes, no gradients) on the same layer: the CAM family of
      `wsol_keras.localization.cam_family`.
Each raw map is upsampled (cv2 bicubic, as wsolevaluation) to S x S and min-max normalized per image
(`wsol_keras.localization.primitives`).

Which class: ``class_ids`` is an argument. The evaluator passes the ground
truth (GT-known protocol of Choe et al., "Evaluating Weakly Supervised Object
Localization Methods Right", CVPR 2020, Sec. 4); serving and export pass None,
i.e. the classifier's top-1 prediction.

The CAM threshold of the box step: `evaluation.records.resolve_cam_threshold` (the threshold of
the workdir's evaluation record for this map method, layer and weights, see
`wsol_keras.evaluation.records`; else the config's, else `FALLBACK_CAM_THRESHOLD`).
"""

from keras import ops

from wsol_keras.localization import primitives
from wsol_keras.localization import cam_family
from wsol_keras.localization.dual_gradient import (
    GRADIENT_FREE_METHODS,
    METHODS_DGL,
    DualGradient,
)
from wsol_keras.losses.class_tolerant import resolve_top_k

# The map methods on a named layer (config.eval.dgl_layer), computed by
# `DualGradient`: dgl, pcs, gradcam and the CAM family.
GRADIENT_MAP_METHODS = METHODS_DGL
# Of those, the ones that need no backward pass (eigencam, scorecam).
LAYER_MAP_METHODS_WITHOUT_GRADIENTS = GRADIENT_FREE_METHODS
MAP_METHODS = ("cam", "topk") + GRADIENT_MAP_METHODS
# The CAM paper's threshold (Zhou et al. 2016, Sec. 3.1: 20% of the max).
FALLBACK_CAM_THRESHOLD = 0.2


def check_cam_threshold(value, origin):
    """float(value) in [0, 1], else ValueError naming `origin`."""
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{origin}: cam_threshold={value} is not in [0, 1]")
    return value


def finish_maps(raw_maps, size, upsample="cv2_bicubic"):
    """Raw [B, h, w] maps -> [B, S, S] in [0, 1]: upsample, then min-max.

    The default upsampling is wsolevaluation's (cv2 bicubic); bilinear is an
    option (`config.eval.upsample`). On the synthetic CAM model the two differ
    by 0.27 points of MaxBoxAccV2 (bench/interp_bicubic_vs_bilinear.py).
    """
    return primitives.normalize_maps(primitives.upsample_maps(raw_maps, size, method=upsample))


class Localizer:
    """The localization map of a model for one map method.

    Args:
        model: a `WSOLModel` (outputs "logits", "cams", optionally
            "localizer_logits" and "boxes"), or for gradient methods any
            classifier `DualGradient` accepts.
        image_size: S, the side of the returned maps.
        map_method: one of `MAP_METHODS`.
        topk: K of the ``"topk"`` map (int, or a fraction of the classes).
        dgl_layer: layer path (or list of paths, for the layer sweep) of the
            gradient methods.
        alpha: DGL Eq. 7 constant.
        scorecam_channels: channel cap N of ``"scorecam"``.
        upsample: "cv2_bicubic" (wsolevaluation's) or "bilinear".
        **dgl_kwargs: more `DualGradient` arguments (``logits_fn``,
            ``output_key``) for models that are not `WSOLModel`s.

    Raises:
        ValueError: an unknown map method, or a gradient method without a layer.
    """

    def __init__(
        self,
        model,
        image_size,
        map_method="cam",
        topk=1,
        dgl_layer="",
        alpha=10.0,
        upsample="cv2_bicubic",
        scorecam_channels=cam_family.SCORECAM_DEFAULT_CHANNELS,
        **dgl_kwargs,
    ):
        if map_method not in MAP_METHODS:
            raise ValueError(
                f"config.eval.map_method={map_method!r}: expected one of "
                f"{', '.join(MAP_METHODS)}"
            )
        if upsample not in primitives.UPSAMPLE_METHODS:
            raise ValueError(
                f"config.eval.upsample={upsample!r}: expected one of "
                f"{', '.join(primitives.UPSAMPLE_METHODS)}"
            )
        self.model = model
        self.upsample = upsample
        self.image_size = int(image_size)
        self.map_method = map_method
        self.topk = topk
        self.explainer = None
        self.layers = []
        if map_method in GRADIENT_MAP_METHODS:
            layers = [dgl_layer] if isinstance(dgl_layer, str) else list(dgl_layer)
            if not all(layers):
                raise ValueError(
                    f"config.eval.map_method={map_method!r} needs "
                    "config.eval.dgl_layer (a layer path)"
                )
            self.layers = layers
            self.explainer = DualGradient(
                model,
                layers,
                alpha=alpha,
                method=map_method,
                scorecam_channels=scorecam_channels,
                **dgl_kwargs,
            )

    @classmethod
    def from_config(cls, model, config):
        """From ``config.eval`` (map_method, topk, dgl_layer, scorecam_channels)
        and data.image_size."""
        e = config.eval
        return cls(
            model,
            config.data.image_size,
            map_method=e.get("map_method", "cam"),
            topk=e.get("topk", 1),
            dgl_layer=e.get("dgl_layer", ""),
            upsample=e.get("upsample", "cv2_bicubic"),
            scorecam_channels=e.get(
                "scorecam_channels", cam_family.SCORECAM_DEFAULT_CHANNELS
            ),
        )

    @property
    def needs_gradients(self):
        return self.explainer is not None

    # -- the class choices, once -------------------------------------------------

    @staticmethod
    def rank_logits(outputs):
        """Logits that rank the classes of the top-K map (the localizer's own)."""
        return outputs.get("localizer_logits", outputs["logits"])

    def topk_class_ids(self, outputs):
        """int32 [B, K]: the top-K classes of SLT-Net Eq. 9."""
        logits = self.rank_logits(outputs)
        k = resolve_top_k(self.topk, int(logits.shape[-1]), name="config.eval.topk")
        return primitives.topk_class_ids(logits, k)

    @staticmethod
    def predicted_class_ids(outputs):
        """int32 [B]: the classifier's top-1 class (serving / export)."""
        return primitives.top1_class_ids(outputs["logits"])

    # -- maps --------------------------------------------------------------------

    def layer_maps(self, images, class_ids):
        """Gradient methods: dict layer path -> [B, S, S] maps in [0, 1]."""
        raw = self.explainer(images, labels=class_ids)
        return {n: finish_maps(raw[n], self.image_size, self.upsample) for n in self.layers}

    def raw_maps(self, images, outputs, class_ids):
        """[B, h, w] maps of `class_ids` at the model's (or layer's) resolution,
        before upsampling and normalization (the original-size protocol of
        `wsol_keras.evaluation.protocol` resizes these itself)."""
        if self.map_method == "cam":
            return primitives.select_class_maps(outputs["cams"], class_ids)
        if self.map_method == "topk":
            return primitives.select_class_maps(outputs["cams"], self.topk_class_ids(outputs))
        return self.explainer(images, labels=class_ids)[self.layers[0]]

    def maps(self, images, outputs, class_ids):
        """[B, S, S] maps in [0, 1] of `class_ids` ([B]) from the model's outputs."""
        return finish_maps(
            self.raw_maps(images, outputs, class_ids), self.image_size, self.upsample
        )

    def __call__(self, images, class_ids=None, outputs=None):
        """Runs the model (unless `outputs` are given) and computes the maps.

        The gradient methods take the model's outputs from the forward pass
        their tape records (`DualGradient` with ``return_outputs``): one
        forward and one backward per batch, never a second forward for the
        logits, class maps or boxes.

        Args:
            images: float [B, S, S, 3] in [0, 255].
            class_ids: int [B] classes of the maps (ground truth for GT-known);
                None: the predicted top-1 class.
            outputs: the model's outputs on `images`, when already computed.

        Returns:
            dict: "outputs" (the model's), "logits" float32 [B, C],
            "class_ids" int32 [B], "raw_maps" float32 [B, h, w] (before
            upsampling), "maps" float32 [B, S, S] in [0, 1], and
            "boxes" float32 [B, 4] normalized xyxy for box regressors.
        """
        if outputs is None and self.explainer is not None:
            got = self.explainer(
                images, labels=class_ids, return_logits=True, return_outputs=True
            )
            outputs = got["outputs"]
            logits = ops.cast(got["logits"], "float32")
            class_ids = ops.cast(got["target"], "int32")
            raw = got[self.layers[0]]
        else:
            if outputs is None:
                outputs = self.model(images, training=False)
            logits = ops.cast(outputs["logits"], "float32")
            if class_ids is None:
                class_ids = self.predicted_class_ids(outputs)
            class_ids = ops.cast(ops.reshape(class_ids, (-1,)), "int32")
            raw = self.raw_maps(images, outputs, class_ids)
        result = {
            "outputs": outputs,
            "logits": logits,
            "class_ids": class_ids,
            "raw_maps": ops.cast(raw, "float32"),
            "maps": finish_maps(raw, self.image_size, self.upsample),
        }
        if isinstance(outputs, dict) and "boxes" in outputs:
            result["boxes"] = ops.cast(outputs["boxes"], "float32")
        return result
