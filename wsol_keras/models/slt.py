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
* **classifier**: its own backbone -> GAP -> Dense(C) (``classifier_head=
  "gap"``) or backbone -> VGG16's own top, fc6 / fc7 (``"vgg_fc"``, Sec. 4.2:
  VGG16 with its 1000-way output replaced, `wsol_keras.layers.vgg_top`) ->
  Dense(C); cross-entropy (Eq. 5).
  "The classifier is trained independently" (Sec. 3.1, Fig. 2b): with
  ``classifier_weights`` (a separately trained classifier) or
  ``classifier_train.epochs > 0`` (wsol-train first trains it on its own
  schedule, `wsol_keras.models.slt_classifier_phase`) the branch is frozen here and only
  localizer and regressor train; otherwise it trains in the same steps at its
  own rate (``classifier_lr_multiplier``).

Outputs: "logits" (classifier), "cams" (localizer class maps, for
MaxBoxAccV2 / PxAP of the localizer, with the top-K ACAM of Eq. 9 selected by
``config.eval.map_method="topk"``), "boxes" (regressor, normalized xyxy in
[0, 1], where 1 is pixel S-1 as in `wsol_keras.evaluation.evaluator`), and
"localizer_logits".

Choices the paper leaves open (documented):

* The pseudo box comes from the localizer's top-K ACAM (Eq. 9), upsampled to
  the input size S (bilinear), min-max normalized, thresholded at
  ``box_threshold``; the box is that of the largest connected component
  (``pseudo_box="component"``, the CAM rule of Sec. 3.2, the box the
  evaluator draws from the same map), or the extent of all pixels above the
  threshold (``"extent"``: cheaper, but one stray response in the clutter
  stretches it to the whole image). A constant map yields the full image.
  Normalized as pixel / (S - 1) of the model input, the frame in which the
  evaluator scales the regressor's boxes.
* The regressor's second FC has no ReLU during training (a ReLU output unit
  whose pre-activation goes negative never recovers); its output is clipped to
  [0, 1] in "boxes".
"""

import types

from keras import layers, ops

from wsol_keras.localization.boxes import PSEUDO_BOX_RULES, pseudo_box_from_maps
from wsol_keras.localization.primitives import normalize_maps, upsample_maps
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
from wsol_keras.models.base import WSOLModel, constructor_defaults, sparse_ce
from wsol_keras.models.classifier import build_classifier_top, check_classifier_head

__all__ = [
    "CLASSIFIER_TRAIN_DEFAULTS",
    "SLTModel",
    "smooth_l1",
]

# g of Eq. 10: the `VisualStimulusTransform` arguments an experiment sets
# (config.method.vst), with that layer's own defaults.
VST_DEFAULTS = types.MappingProxyType(
    constructor_defaults(
        VisualStimulusTransform,
        ("brightness", "contrast", "saturation", "hue", "flip_prob", "scale_range"),
    )
)


# The classifier's own training run (Sec. 3.1, Fig. 2b: "trained
# independently"; the paper gives no schedule): `config.train` fields that
# phase 1 of wsol-train replaces (`wsol_keras.models.slt_classifier_phase.phase_config`).
# epochs 0: no separate run. The rest: the released CUB CAM-VGG16 fine-tuning
# schedule of DANet (xuehaolan/DANet scripts/train_CAM_cub.sh, exper/train_CAM.py
# get_model): batch 30, lr 0.001, 100 epochs, x0.1 at epoch 80, torch SGD
# momentum 0.9 Nesterov, groups weights 1x, biases 2x, new layer 10x / 20x.
CLASSIFIER_TRAIN_DEFAULTS = types.MappingProxyType(
    {
        "epochs": 0,
        "batch_size": 30,
        "learning_rate": 0.001,
        "lr_schedule": "step",
        "lr_decay_epochs": 80,
        "lr_decay_factor": 0.1,
        "lr_decay_at_epochs": (),
        "head_lr_multiplier": 10.0,
        "bias_lr_multiplier": 2.0,
        "nesterov": True,
    }
)


def resolve_classifier_train(classifier_train):
    """`CLASSIFIER_TRAIN_DEFAULTS` updated by `classifier_train` (checked)."""
    given = dict(classifier_train.items())
    unknown = sorted(set(given) - set(CLASSIFIER_TRAIN_DEFAULTS))
    if unknown:
        raise ValueError(
            f"config.method.classifier_train.{unknown[0]}: not a field of the "
            f"SLT classifier's schedule; its fields are "
            f"{sorted(CLASSIFIER_TRAIN_DEFAULTS)}"
        )
    out = {**CLASSIFIER_TRAIN_DEFAULTS, **given}
    epochs = out["epochs"]
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ValueError(
            f"config.method.classifier_train.epochs={epochs!r}: must be an "
            "integer >= 0 (0: no separate classifier run)"
        )
    out["lr_decay_at_epochs"] = tuple(out["lr_decay_at_epochs"])
    return out


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
        k: top-K of Eq. 8/9, an int or a fraction of C (CUB: 0.15 = 30 of 200;
            ILSVRC: 0.1 = 100 of 1000).
        alpha: loss reduction of Eq. 8 (CUB 0.4, ILSVRC 0.2).
        beta: weight of L_VST in Eq. 2 (10 in the paper).
        conv_filters: 3x3 conv widths of the localizer's CAM head.
        regressor_hidden: width of the regressor's hidden FC layer.
        box_threshold: threshold of the localizer map for the pseudo box.
        pseudo_box: "component" (largest connected component above
            ``box_threshold``, Sec. 3.2) or "extent" (extent of all pixels
            above it).
        vst: mapping of `VisualStimulusTransform` arguments (g of Eq. 10);
            missing ones take the layer's defaults.
        seed: seed of the transform's random draws.
        classifier_lr_multiplier: learning rate of the classifier's backbone
            relative to the base (localizer) rate: the classifier "is trained
            independently" (Sec. 3.1, Fig. 2b) on its own schedule, so it need
            not share the localizer's low "new optimization" rate (Table 5).
        classifier_head_lr_multiplier: extra factor of the classifier's new
            Dense layer (10 as fine-tuning convention; the localizer's heads keep
            `head_lr_multiplier`).
        classifier_weights: a separately trained classifier (a finished
            wsol-train workdir of CAM with ``conv_filters=()`` or of SLT, or
            its model.weights.h5): wsol-train loads it into the classifier
            branch (`wsol_keras.models.slt_classifier_phase`) and the branch is frozen.
        classifier_train: the classifier's own schedule
            (`CLASSIFIER_TRAIN_DEFAULTS` fields); with ``epochs > 0``
            wsol-train trains it first, into ``<workdir>/classifier``, and
            the branch is frozen while localizer and regressor train.
        classifier_head: "gap" (GAP -> Dense(C)) or "vgg_fc" (VGG16's fc6 /
            fc7 -> Dense(C), Sec. 4.2; `wsol_keras.layers.vgg_top`).
        pretrained_top: "imagenet" loads VGG16's ImageNet fc6 / fc7 into the
            "vgg_fc" head (filled from config.model.weights by the registry).
        **kwargs: `WSOLModel` arguments.
    """

    BACKBONE_PREFIXES = ("backbone", "regressor_backbone", "classifier_backbone")

    def __init__(
        self,
        localizer_backbone,
        regressor_backbone,
        classifier_backbone,
        num_classes,
        k=0.15,
        alpha=0.4,
        beta=10.0,
        conv_filters=(),
        regressor_hidden=512,
        box_threshold=0.2,
        pseudo_box="component",
        vst=VST_DEFAULTS,
        seed=None,
        classifier_lr_multiplier=1.0,
        classifier_head_lr_multiplier: float | None = None,
        classifier_weights: str | None = None,
        classifier_train=CLASSIFIER_TRAIN_DEFAULTS,
        classifier_head="gap",
        pretrained_top: str | None = None,
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
        if pseudo_box not in PSEUDO_BOX_RULES:
            raise ValueError(
                f"config.method.pseudo_box={pseudo_box!r}: expected one of "
                f"{PSEUDO_BOX_RULES}"
            )
        self.pseudo_box = pseudo_box
        self.classifier_lr_multiplier = float(classifier_lr_multiplier)
        self.classifier_head_lr_multiplier = (
            None
            if classifier_head_lr_multiplier is None
            else float(classifier_head_lr_multiplier)
        )
        self.smt_loss = ClassTolerantLoss(k=self.top_k, alpha=self.alpha)
        self.cam_head = CAMHead(num_classes, conv_filters=conv_filters, name="cam_head")
        vst = dict(vst.items())
        if "scale_range" in vst:
            vst["scale_range"] = tuple(vst["scale_range"])
        self.transform = VisualStimulusTransform(seed=seed, name="vst_transform", **vst)
        self.regressor_backbone = regressor_backbone
        self.regressor_pool = layers.GlobalAveragePooling2D(name="regressor_gap")
        self.regressor_fc1 = layers.Dense(
            int(regressor_hidden), activation="relu", name="regressor_fc1"
        )
        self.regressor_fc2 = layers.Dense(4, dtype="float32", name="regressor_fc2")
        self.classifier_backbone = classifier_backbone
        self.classifier_head = check_classifier_head(classifier_head)
        # "gap" keeps its historical layer name (weights files stay loadable).
        self.classifier_pool = build_classifier_top(
            self.classifier_head,
            pretrained_top,
            "classifier_gap" if self.classifier_head == "gap" else "classifier_top",
        )
        self.classifier_fc = layers.Dense(
            num_classes, dtype="float32", name="classifier_fc"
        )
        self.classifier_weights = classifier_weights or None
        self.classifier_train = resolve_classifier_train(classifier_train)
        self._freeze_independent_classifier()

    @property
    def classifier_frozen(self):
        """Whether the classifier comes from its own run (not trained here)."""
        return bool(self.classifier_weights or self.classifier_train["epochs"])

    def _freeze_independent_classifier(self):
        if self.classifier_weights and self.classifier_train["epochs"]:
            raise ValueError(
                f"config.method.classifier_weights={self.classifier_weights!r} "
                "and config.method.classifier_train.epochs="
                f"{self.classifier_train['epochs']}: give the classifier one "
                "source, a trained one or its own run"
            )
        if not self.classifier_frozen:
            return
        if (
            self.classifier_lr_multiplier != 1.0
            or self.classifier_head_lr_multiplier is not None
        ):
            raise ValueError(
                "config.method.classifier_lr_multiplier / "
                "classifier_head_lr_multiplier set the rate of a classifier "
                "trained with the localizer; this one is trained on its own "
                "(classifier_weights or classifier_train.epochs) and frozen "
                "here: leave them at 1.0 / None (its rates are "
                "classifier_train's)"
            )
        # Frozen from construction on, so the optimizer (and every
        # checkpoint's optimizer state) never holds the classifier's variables.
        self.classifier_backbone.trainable = False
        self.classifier_pool.trainable = False
        self.classifier_fc.trainable = False

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
        # A frozen classifier (its own run) infers: no dropout in its fc6 /
        # fc7, as its BN layers already run on moving statistics.
        top_training = False if self.classifier_frozen else training
        feats = self.classifier_pool(
            self.classifier_backbone(images, training=training),
            training=top_training,
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
        return pseudo_box_from_maps(maps, self.box_threshold, self.pseudo_box)

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
            # Tracked also when the classifier is frozen (no gradient then).
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
        # VGG16's fc6 / fc7 are pretrained like the backbone: the base rate.
        cls_ids = {
            id(v)
            for net in (self.classifier_backbone, self.classifier_pool)
            for v in net.trainable_variables
        }
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

