"""DANet: divergent activation (Xue et al., ICCV 2019) on the package's backbones.

Paper: "DANet: Divergent Activation for Weakly Supervised Object Localization" (Xue et al.),
Sec. 3.2-3.3. One
`DivergentActivation` head per hierarchy level, on three backbone depths
(`BACKBONES[name].levels`, shallow to deep; VGG16: pool3, pool4, conv5_3 as the
released code): the shallowest depth classifies the coarsest level
(grandparent), the deepest the leaf classes. Loss (Eq. 2):
HDA (Eq. 3, 0.5 x CE per level as the released code) + lambda x DDA (Eq. 4).

Data with fewer ancestor levels uses fewer heads (the deepest ones): with no
hierarchy DANet reduces to one leaf head with K maps per class and DDA.

Localization maps ("cams", per leaf class c), as the released evaluation
(xuehaolan/DANet exper/val_hierarchy.py + utils/localization.py
get_topk_boxes_hier): each level's class map is the mean of its K ReLU'd maps
(released get_*_maps), upsampled bilinearly with align_corners=True to the
largest level's size (F.upsample(..., (28, 28), align_corners=True)); the
levels are SUMMED and the sum min-max normalized ONCE (norm_atten_map).
`fusion="per_level"` keeps the package's earlier variant (normalize each level,
then sum) as an option.  For the ancestor levels the released code adds the
ancestor level's own top-1 predicted class map (`ancestor_maps="predicted"`,
the default); `ancestor_maps="ancestor"` adds the map of c's true ancestor from
the class -> ancestors table (`ancestors`, data_info["ancestors"]) instead.
Classification uses the leaf level (Sec. 3.3).
"""

import numpy as np
from keras import ops

from wsol_keras.localization.primitives import (  # noqa: F401 (re-exported)
    _align_corners_matrix,
    normalize_maps,
    resize_align_corners,
    select_class_maps,
    top1_class_ids,
)
from wsol_keras.layers.divergent_activation import (
    DivergentActivation,
    localization_maps,
)
from wsol_keras.losses.discrepancy import DiscrepancyLoss
from wsol_keras.losses.hierarchical import (
    hierarchical_cross_entropy,
    hierarchy_level_labels,
)
from wsol_keras.models.base import WSOLModel


class DANetModel(WSOLModel):
    """Multi-level backbone + one DivergentActivation head per hierarchy level.

    Outputs: "logits" [B, C] (leaf), "cams" [B, H, W, C] (see module doc), and
    per level l (0 = leaf, 1 = parent, 2 = grandparent) "logits_l{l}" and
    "maps_l{l}" ([B, h_l, w_l, C_l, K]).

    Args:
        backbone: `build_backbone(..., levels=True)` (three outputs, shallow to
            deep).
        num_classes: C leaf classes.
        hierarchy_sizes: classes per ancestor level, nearest parent first; the
            first two are used.
        num_maps: K maps per class.
        conv_filters: per depth (shallow to deep) the 3x3 conv widths.
        level_weights: HDA weight per level, leaf first (released code: 0.5
            each); entries beyond the levels the data has are unused.
        dda_weight: lambda.
        keep_fraction: fraction of the maps DDA keeps per step.
        dda_absolute: `discrepancy_loss` mode ("pair" or "image" = released).
        dda_align_corners: DDA upsamples the shallower levels' maps with
            align_corners=True (released vgg_DA.py `get_loss`) instead of
            half-pixel centers.
        ancestors: optional int [C, L] table of each leaf's ancestors.
        fusion: "released" (sum of level maps, normalized once) or
            "per_level" (each level normalized before the sum).
        ancestor_maps: "predicted" (released: the ancestor level's top-1
            class) or "ancestor" (c's ancestor; needs `ancestors`).
        seed: DDA SeedGenerator seed.
        **kwargs: `WSOLModel` arguments.
    """

    BACKBONE_LEVELS = True

    def __init__(
        self,
        backbone,
        num_classes,
        hierarchy_sizes=(),
        num_maps=8,
        # Per backbone depth, shallow to deep (released VGG16 code).
        conv_filters=((512, 512), (1024, 1024), (1024, 1024)),
        level_weights=(0.5, 0.5, 0.5),
        dda_weight=0.01,
        keep_fraction=0.5,
        dda_absolute="pair",
        dda_align_corners=False,
        ancestors=None,
        seed=None,
        fusion="released",
        ancestor_maps="predicted",
        **kwargs,
    ):
        super().__init__(backbone, num_classes, loss_names=("hda", "dda"), **kwargs)
        self.num_ancestor_levels = min(2, len(hierarchy_sizes))
        self.num_levels = 1 + self.num_ancestor_levels
        sizes = [num_classes, *[int(s) for s in hierarchy_sizes[:2]]]  # leaf first
        conv_filters = [tuple(f) for f in conv_filters]
        if len(conv_filters) != 3:
            raise ValueError(
                "DANet: method.conv_filters needs one tuple per backbone depth "
                f"(3, shallow to deep), got {len(conv_filters)}"
            )
        # Heads leaf first; the leaf reads the deepest features.
        self.heads = [
            DivergentActivation(
                sizes[l],
                num_maps=num_maps,
                conv_filters=conv_filters[2 - l],
                name=f"head_l{l}",
            )
            for l in range(self.num_levels)
        ]
        self.level_weights = (
            None if level_weights is None else list(level_weights)[: self.num_levels]
        )
        self.dda = DiscrepancyLoss(
            weight=dda_weight,
            keep_fraction=keep_fraction,
            absolute=dda_absolute,
            align_corners=dda_align_corners,
            seed=seed,
            name="dda",
        )
        if fusion not in ("released", "per_level"):
            raise ValueError(
                f"DANet: fusion={fusion!r}: expected 'released' or 'per_level'"
            )
        if ancestor_maps not in ("predicted", "ancestor"):
            raise ValueError(
                f"DANet: ancestor_maps={ancestor_maps!r}: expected 'predicted' "
                "or 'ancestor'"
            )
        self.fusion = fusion
        self.ancestor_maps = ancestor_maps
        self.ancestors = None
        if ancestors is not None and self.num_ancestor_levels:
            table = np.asarray(ancestors, np.int32).reshape(num_classes, -1)
            self.ancestors = table[:, : self.num_ancestor_levels]

    def forward(self, images, labels=None, hierarchy=None, training=None):
        features = self.backbone(images, training=training)  # shallow to deep
        outs = [
            head(features[2 - l], training=training)
            for l, head in enumerate(self.heads)
        ]
        result = {"logits": outs[0]["logits"]}
        for l, out in enumerate(outs):
            result[f"logits_l{l}"] = out["logits"]
            result[f"maps_l{l}"] = out["maps"]
        result["cams"] = self._localization(outs)
        return result

    def _localization(self, outs):
        sizes = [tuple(o["maps"].shape[1:3]) for o in outs]
        target = max(sizes, key=lambda s: s[0] * s[1])

        def level_map(out):
            m = resize_align_corners(localization_maps(out["maps"]), target)
            return normalize_maps(m) if self.fusion == "per_level" else m

        cams = level_map(outs[0])
        for l in range(1, self.num_levels):
            maps = level_map(outs[l])
            if self.ancestors is not None and self.ancestor_maps == "ancestor":
                cams = cams + ops.take(maps, self.ancestors[:, l - 1], axis=-1)
            else:
                top1 = top1_class_ids(outs[l]["logits"])
                cams = cams + select_class_maps(maps, top1)[..., None]
        return normalize_maps(cams) if self.fusion == "released" else cams

    def loss_terms(self, inputs, outputs, training=True):
        labels = hierarchy_level_labels(
            inputs["label"], inputs.get("hierarchy"), self.num_levels
        )
        logits = [outputs[f"logits_l{l}"] for l in range(self.num_levels)]
        hda = ops.mean(hierarchical_cross_entropy(labels, logits, self.level_weights))
        maps = [outputs[f"maps_l{l}"] for l in range(self.num_levels)]
        return {"hda": hda, "dda": self.dda(maps, labels, training=training)}
