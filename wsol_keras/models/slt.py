"""SLT-Net: separated localizer / regressor / classifier with learning tolerance.

Reference: Guo et al., "Strengthen Learning Tolerance for Weakly Supervised
Object Localization", CVPR 2022, Sec. 3.1 (Eq. 1-5), 3.3 (Eq. 8-9), 3.4
(Eq. 10-13), Fig. 2.

Three networks, trained in the same `fit` step with separate losses (their
gradients never mix, so this equals training them side by side; Eq. 1
``L = L_LOC + L_REG + L_CLS``):

* **localizer**: backbone -> `CAMHead` -> class maps; logits by GAP. Loss
  ``L_LOC = L_SMT + beta * L_VST`` (Eq. 2): the class-tolerant loss (Eq. 8) on
  the original image plus the visual-stimulus tolerance loss (Eq. 13) between
  the maps of the original and the inverse-transformed maps of a randomly
  transformed copy (Eq. 10-12). Both passes run in the same step.
* **regressor**: its own backbone -> GAP -> Dense + ReLU -> Dense(4), trained
  with Smooth-L1 (Eq. 3-4, summed over the 4 coordinates, averaged over the
  batch) against the box of the localizer's map for the same image, in
  normalized xyxy, with no gradient into the localizer.
* **classifier**: its own backbone -> GAP -> Dense(C), cross-entropy (Eq. 5).

Outputs: "logits" (classifier), "cams" (localizer class maps, for
MaxBoxAccV2 / PxAP of the localizer, with the top-K ACAM of Eq. 9 selected by
``config.eval.map_method="topk"``), "boxes" (regressor, normalized xyxy in
[0, 1], where 1 is pixel S-1 as in `wsol_keras.evaluate`), and
"localizer_logits".

Choices the paper leaves open (documented):

* The pseudo box comes from the localizer's top-K ACAM (Eq. 9), upsampled to
  the input size S (bilinear), min-max normalized, thresholded at
  ``box_threshold``; the box is the extent of all pixels above the threshold
  (an in-graph stand-in for the largest connected component; a map with no
  pixel above it yields the full image). Normalized as pixel / (S - 1).
* The regressor's second FC has no ReLU during training (a ReLU output unit
  whose pre-activation goes negative never recovers); its output is clipped to
  [0, 1] in "boxes".
"""

import ml_collections
import tensorflow as tf
from keras import layers, ops

import keras

from wsol_keras.backbones import build_backbone
from wsol_keras.cams import normalize_maps, upsample_maps
from wsol_keras.layers.cam_head import CAMHead, global_average_logits
from wsol_keras.losses.class_tolerant import (
    ClassTolerantLoss,
    resolve_top_k,
    topk_average_cams,
)
from wsol_keras.losses.visual_tolerance import (
    VisualStimulusTransform,
    visual_stimulus_tolerance_loss,
)
from wsol_keras.models.base import WSOLModel, sparse_ce

__all__ = [
    "SLTModel",
    "extent_box_from_maps",
    "smooth_l1",
    "default_method_config",
    "build",
]


def extent_box_from_maps(maps, threshold):
    """In-graph box of the thresholded map's extent, normalized xyxy.

    Args:
        maps: ``[B, H, W]`` maps already min-max normalized to [0, 1].
        threshold: scalar; pixels ``>= threshold`` are foreground.

    Returns:
        float32 ``[B, 4]`` ``(x1, y1, x2, y2) / (W - 1, H - 1, W - 1, H - 1)``
        (inclusive pixel ends); ``[0, 0, 1, 1]`` for a map without foreground.
    """
    maps = tf.convert_to_tensor(maps, tf.float32)
    height, width = maps.shape[1], maps.shape[2]
    fg = maps >= threshold
    cols = tf.reduce_any(fg, axis=1)  # [B, W]
    rows = tf.reduce_any(fg, axis=2)  # [B, H]

    def first_last(any_along, size):
        idx = tf.range(size, dtype=tf.float32)
        big = float(size)
        first = tf.reduce_min(tf.where(any_along, idx, big), axis=-1)
        last = tf.reduce_max(tf.where(any_along, idx, -1.0), axis=-1)
        return first, last

    x1, x2 = first_last(cols, width)
    y1, y2 = first_last(rows, height)
    has_fg = tf.reduce_any(cols, axis=-1)
    box = tf.stack(
        [
            x1 / (width - 1.0),
            y1 / (height - 1.0),
            x2 / (width - 1.0),
            y2 / (height - 1.0),
        ],
        axis=-1,
    )
    full = tf.constant([0.0, 0.0, 1.0, 1.0], tf.float32)
    return tf.where(has_fg[:, None], box, full[None, :])


def smooth_l1(pred, target):
    """Eq. 3-4: sum over the 4 coordinates of smooth-L1, averaged over the batch."""
    diff = ops.abs(ops.cast(pred, "float32") - ops.cast(target, "float32"))
    per = ops.where(diff < 1.0, 0.5 * diff * diff, diff - 0.5)
    return ops.mean(ops.sum(per, axis=-1))


class SLTModel(WSOLModel):
    """SLT-Net (Fig. 2): localizer + regressor + classifier.

    Args:
        localizer_backbone: feature extractor of the localizer (this is the
            `WSOLModel.backbone`).
        regressor_backbone: feature extractor of the regressor.
        classifier_backbone: feature extractor of the classifier.
        num_classes: C.
        k: top-K of Eq. 8/9, an int or a fraction of C.
        alpha: loss reduction of Eq. 8.
        beta: weight of L_VST in Eq. 2 (10 in the paper).
        conv_filters: 3x3 conv widths of the localizer's CAM head.
        regressor_hidden: width of the regressor's hidden FC layer.
        box_threshold: threshold of the localizer map for the pseudo box.
        transform: a `VisualStimulusTransform` (g of Eq. 10) or None for the
            default one.
        classifier_lr_multiplier: learning rate of the classifier's backbone
            relative to the base (localizer) rate: the classifier "is trained
            independently" (Sec. 3.1, Fig. 2b) on its own schedule, so it need
            not share the localizer's low "new optimization" rate (Table 5).
        classifier_head_lr_multiplier: extra factor of the classifier's new
            Dense layer (10 as fine-tuning convention; the localizer's heads keep
            `head_lr_multiplier`).
        **kwargs: `WSOLModel` arguments.
    """

    def __init__(
        self,
        localizer_backbone,
        regressor_backbone,
        classifier_backbone,
        num_classes,
        k=30,
        alpha=0.4,
        beta=10.0,
        conv_filters=(),
        regressor_hidden=512,
        box_threshold=0.2,
        transform=None,
        classifier_lr_multiplier=1.0,
        classifier_head_lr_multiplier=None,
        **kwargs,
    ):
        kwargs.setdefault("loss_names", ("smt", "vst", "reg", "cls"))
        super().__init__(localizer_backbone, num_classes, **kwargs)
        self.top_k = resolve_top_k(k, num_classes, name="config.method.k")
        self.k = k
        self.alpha = float(alpha)
        self.beta = float(beta)
        if not 0.0 <= float(box_threshold) <= 1.0:
            raise ValueError(
                f"SLTModel: box_threshold must be in [0, 1]; got {box_threshold!r}."
            )
        self.box_threshold = float(box_threshold)
        self.classifier_lr_multiplier = float(classifier_lr_multiplier)
        self.classifier_head_lr_multiplier = (
            None
            if classifier_head_lr_multiplier is None
            else float(classifier_head_lr_multiplier)
        )
        self.smt_loss = ClassTolerantLoss(k=self.top_k, alpha=self.alpha)
        self.cam_head = CAMHead(num_classes, conv_filters=conv_filters, name="cam_head")
        self.transform = transform or VisualStimulusTransform(name="vst_transform")
        self.regressor_backbone = regressor_backbone
        self.regressor_pool = layers.GlobalAveragePooling2D(name="regressor_gap")
        self.regressor_fc1 = layers.Dense(
            int(regressor_hidden), activation="relu", name="regressor_fc1"
        )
        self.regressor_fc2 = layers.Dense(4, dtype="float32", name="regressor_fc2")
        self.classifier_backbone = classifier_backbone
        self.classifier_pool = layers.GlobalAveragePooling2D(name="classifier_gap")
        self.classifier_fc = layers.Dense(
            num_classes, dtype="float32", name="classifier_fc"
        )

    # -- the three networks ------------------------------------------------------

    def localize(self, images, training=None):
        """Localizer: class maps [B, h, w, C] (float32)."""
        return self.cam_head(self.backbone(images, training=training))

    def regress(self, images, training=None):
        """Regressor: raw normalized xyxy [B, 4] (not clipped)."""
        feats = self.regressor_pool(self.regressor_backbone(images, training=training))
        return self.regressor_fc2(self.regressor_fc1(feats))

    def classify(self, images, training=None):
        """Classifier: logits [B, C]."""
        feats = self.classifier_pool(
            self.classifier_backbone(images, training=training)
        )
        return self.classifier_fc(feats)

    def localizer_boxes(self, cams, localizer_logits, image_size):
        """Pseudo box of the localizer (normalized xyxy), from the top-K ACAM.

        Args:
            cams: localizer class maps [B, h, w, C].
            localizer_logits: [B, C], ranks the classes of Eq. 9.
            image_size: (H, W) the maps are upsampled to before thresholding.
        """
        size = tuple(int(v) for v in image_size)
        maps = topk_average_cams(cams, localizer_logits, self.top_k)
        maps = normalize_maps(upsample_maps(maps, size))
        return extent_box_from_maps(maps, self.box_threshold)

    # -- WSOLModel hooks ----------------------------------------------------------

    def forward(self, images, labels=None, hierarchy=None, training=None):
        cams = self.localize(images, training=training)
        loc_logits = global_average_logits(cams)
        raw_boxes = self.regress(images, training=training)
        outputs = {
            "logits": self.classify(images, training=training),
            "cams": cams,
            "boxes": ops.clip(raw_boxes, 0.0, 1.0),
            "localizer_logits": loc_logits,
        }
        if training:
            # Second localizer pass on g(I) (Eq. 10-11), mapped back (Eq. 12).
            transformed, params = self.transform(images, training=True)
            cams_t = self.localize(transformed, training=training)
            back, valid = self.transform.inverse(cams_t, params)
            outputs["vst"] = visual_stimulus_tolerance_loss(cams, back, valid)
            outputs["raw_boxes"] = raw_boxes
        return outputs

    def loss_terms(self, inputs, outputs, training=True):
        labels = inputs["label"]
        cams = outputs["cams"]
        loc_logits = outputs["localizer_logits"]
        image_size = inputs["image"].shape[1:3]
        target = ops.stop_gradient(self.localizer_boxes(cams, loc_logits, image_size))
        raw = outputs.get("raw_boxes", outputs["boxes"])
        terms = {
            "smt": self.smt_loss(labels, loc_logits),
            "reg": smooth_l1(raw, target),
            "cls": sparse_ce(labels, outputs["logits"]),
        }
        if "vst" in outputs:
            terms["vst"] = self.beta * outputs["vst"]
        return terms

    def _gradient_multipliers(self):
        # All three backbones are pretrained feature extractors; the new heads
        # of localizer and regressor get head_lr_multiplier.  The classifier
        # trains on its own rate (classifier_lr_multiplier x base, its Dense
        # layer x classifier_head_lr_multiplier on top): its loss is separate
        # (Eq. 1, 5), so this is the paper's independently trained classifier
        # with its own learning rate, sharing only the number of steps.
        ids = set()
        for net in (self.backbone, self.regressor_backbone):
            ids.update(id(v) for v in net.trainable_variables)
        cls_ids = {id(v) for v in self.classifier_backbone.trainable_variables}
        fc_ids = {id(v) for v in self.classifier_fc.trainable_variables}
        fc_extra = (
            self.head_lr_multiplier
            if self.classifier_head_lr_multiplier is None
            else self.classifier_head_lr_multiplier
        )
        out = []
        for v in self.trainable_variables:
            if id(v) in cls_ids:
                out.append(self.classifier_lr_multiplier)
            elif id(v) in fc_ids:
                out.append(self.classifier_lr_multiplier * fc_extra)
            elif id(v) in ids:
                out.append(1.0)
            else:
                out.append(self.head_lr_multiplier)
        return out


def default_method_config():
    """`config.method` fields of SLT-Net (CUB settings of Sec. 4.1)."""
    return ml_collections.ConfigDict(
        {
            "name": "slt",
            "k": 0.15,  # 30 of CUB's 200 classes (ILSVRC: 0.1 = 100 of 1000)
            "alpha": 0.4,  # ILSVRC: 0.2
            "beta": 10.0,
            "conv_filters": (),
            "regressor_hidden": 512,
            "box_threshold": 0.2,
            # The classifier's own rate (see SLTModel); 1 / None: as before.
            "classifier_lr_multiplier": 1.0,
            "classifier_head_lr_multiplier": None,
            "vst": {
                "brightness": 0.3,
                "contrast": 0.3,
                "saturation": 0.3,
                "hue": 0.05,
                "flip_prob": 0.5,
                "scale_range": (0.8, 1.2),
            },
        }
    )


def build(config, data_info):
    """Builds SLT-Net from `config.model` / `config.method`.

    Args:
        config: experiment ConfigDict (see configs/synthetic_slt.py).
        data_info: dict with "num_classes", "image_size".
    """
    defaults = default_method_config()
    m = config.method

    def get(name):
        return m.get(name, defaults[name])

    def backbone(prefix):
        return build_backbone(
            config.model.backbone,
            data_info["image_size"],
            weights=config.model.weights,
            resnet_last_stride=config.model.get("resnet_last_stride", 2),
            name_prefix=prefix,
        )

    vst = defaults.vst.to_dict()
    if m.get("vst") is not None:
        vst.update(m.vst.to_dict() if hasattr(m.vst, "to_dict") else dict(m.vst))
    transform = VisualStimulusTransform(
        brightness=vst["brightness"],
        contrast=vst["contrast"],
        saturation=vst["saturation"],
        hue=vst["hue"],
        flip_prob=vst["flip_prob"],
        scale_range=tuple(vst["scale_range"]),
        seed=int(config.get("seed", 0)),
        name="vst_transform",
    )
    return SLTModel(
        backbone("backbone"),
        backbone("regressor_backbone"),
        backbone("classifier_backbone"),
        data_info["num_classes"],
        k=get("k"),
        alpha=get("alpha"),
        beta=get("beta"),
        conv_filters=tuple(get("conv_filters")),
        regressor_hidden=get("regressor_hidden"),
        box_threshold=get("box_threshold"),
        transform=transform,
        classifier_lr_multiplier=get("classifier_lr_multiplier"),
        classifier_head_lr_multiplier=get("classifier_head_lr_multiplier"),
        head_lr_multiplier=config.train.head_lr_multiplier,
        name="slt",
    )
