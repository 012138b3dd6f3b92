"""Discrepant divergent activation (DDA) loss of DANet (Xue et al., ICCV 2019).

Paper: "DANet: Divergent Activation for Weakly Supervised Object Localization" (Xue et al.),
Sec. 3.2 Eq. 4:

  L_D = sum_{k < k'} S(A_c^k, A_c^k'),  S(a, b) = a.b / (||a|| ||b||),

over the activation maps A_c^k of the ground-truth class c, weighted by lambda
(Eq. 2; lambda = 0.01 and K = 8 are best, Fig. 6). As in the released code
(xuehaolan/DANet vgg_DA.py `get_loss`/`calculate_cosineloss`): the K maps of
the ground-truth class of every hierarchy level are upsampled to the largest
level's size and concatenated (3K maps for three levels), half of them are
kept at random in each training step (Sec. 4.2 "we randomly dropout half of
the discrepant activation maps in each training mini-batch"; one subset for
the whole batch), and the similarities are averaged over pairs and images.
"""

import keras
from keras import layers, ops

from wsol_keras.localization.primitives import resize_align_corners, upsample_maps

_ABSOLUTE = ("pair", "image", "none")


def pairwise_cosine_similarity(maps, eps=1e-8):
    """Cosine similarity between all map pairs of each image.

    Args:
        maps: [B, h, w, M] maps (the M channels are the maps).
        eps: added under the square root, as the released code
          (a.b / sqrt(|a|^2 |b|^2 + eps)), so all-zero maps give 0, not NaN.

    Returns:
        float32 [B, M, M] with entry [b, i, j] = S(map i, map j) of image b.
    """
    x = ops.cast(maps, "float32")
    shape = ops.shape(x)
    x = ops.reshape(x, (shape[0], -1, shape[-1]))
    dots = ops.einsum("bni,bnj->bij", x, x)
    sq = ops.diagonal(dots, axis1=1, axis2=2)
    return dots / ops.sqrt(sq[:, :, None] * sq[:, None, :] + eps)


def discrepancy_loss(maps, eps=1e-8, absolute="pair"):
    """Mean pairwise cosine similarity over pairs i < j and images (Eq. 4).

    Args:
        maps: [B, h, w, M] the maps whose mutual similarity is penalized (M >= 2).
        eps: see `pairwise_cosine_similarity`.
        absolute: "pair": mean of |S| over pairs (each pair pushed towards
          orthogonality; the default); "image": |sum of S over an image's pairs|
          averaged over pairs and images (the released code); "none": the signed
          mean of S (Eq. 4 literally, rescaled to a mean). The three agree when
          the maps are non-negative.

    Returns:
        float32 scalar.
    """
    if absolute not in _ABSOLUTE:
        raise ValueError(
            f"discrepancy_loss: absolute must be one of {_ABSOLUTE}, "
            f"got {absolute!r}"
        )
    m = maps.shape[-1]
    if m is not None and m < 2:
        raise ValueError(f"discrepancy_loss: need at least 2 maps, got {m}")
    sim = pairwise_cosine_similarity(maps, eps)
    m = ops.shape(sim)[-1]
    upper = ops.triu(ops.ones((m, m), dtype="float32"), k=1)
    num_pairs = ops.sum(upper)
    if absolute == "pair":
        sim = ops.abs(sim)
    per_image = ops.sum(sim * upper[None], axis=(1, 2))
    if absolute == "image":
        per_image = ops.abs(per_image)
    return ops.mean(per_image) / num_pairs


def gather_target_maps(level_maps, level_labels, align_corners=False):
    """Maps of each image's target class at every level, on one grid.

    Args:
        level_maps: list of [B, h_l, w_l, C_l, K_l] activation maps, one per level
          (`DivergentActivation(...)["maps"]`).
        level_labels: list of int [B] class ids, one per level (same order).
        align_corners: resize with torch's ``align_corners=True`` (released
          vgg_DA.py ``get_loss``: ``F.upsample(..., (28, 28), mode='bilinear',
          align_corners=True)``) instead of half-pixel centers.

    Returns:
        float32 [B, H, W, sum_l K_l]: the target class's maps of every level,
        bilinearly resized to the largest level's size (H, W), concatenated in
        level order.
    """
    if len(level_maps) != len(level_labels) or not level_maps:
        raise ValueError(
            "gather_target_maps: need one label vector per level, got "
            f"{len(level_maps)} map tensors and {len(level_labels)} "
            "label tensors"
        )
    sizes = []
    for i, maps in enumerate(level_maps):
        if len(maps.shape) != 5 or maps.shape[1] is None or maps.shape[2] is None:
            raise ValueError(
                "gather_target_maps: level maps must be [B, h, w, C, K] "
                f"with static h, w; level {i} has shape {maps.shape}"
            )
        sizes.append((int(maps.shape[1]), int(maps.shape[2])))
    target = max(sizes, key=lambda s: s[0] * s[1])
    out = []
    for maps, labels in zip(level_maps, level_labels):
        maps = ops.cast(maps, "float32")
        one_hot = ops.one_hot(
            ops.cast(ops.reshape(labels, (-1,)), "int32"),
            ops.shape(maps)[3],
            dtype="float32",
        )
        sel = ops.einsum("bhwck,bc->bhwk", maps, one_hot)
        if tuple(sel.shape[1:3]) != target:
            sel = (resize_align_corners if align_corners else upsample_maps)(sel, target)
        out.append(sel)
    return ops.concatenate(out, axis=-1)


@keras.saving.register_keras_serializable(package="wsol_keras")
class DiscrepancyLoss(layers.Layer):
    """lambda x DDA loss (Eq. 2, 4) over the target maps of all levels.

    A layer, not a `keras.losses.Loss`, because it owns training randomness (a
    `keras.random.SeedGenerator`, tracked and saved with the model and created
    under the distribution strategy like any layer state).

    Call: `layer(level_maps, level_labels, training=None)` with the arguments of
    `gather_target_maps`; returns the float32 scalar lambda * L_D. In training
    a random `keep_fraction` of the concatenated maps (released code:
    int(3K / 2) of 3K) is kept, one subset per step for the whole batch; at
    inference all maps are used so the value is deterministic.

    Args:
        weight: lambda (paper and released code: 0.01).
        keep_fraction: fraction of the maps kept in training (0.5).
        absolute: see `discrepancy_loss` ("pair" default; "image" = released code).
        align_corners: see `gather_target_maps` (True = released code).
        eps: see `pairwise_cosine_similarity`.
        seed: seed of the SeedGenerator (None: random).
    """

    def __init__(
        self,
        weight=0.01,
        keep_fraction=0.5,
        absolute="pair",
        eps=1e-8,
        seed=None,
        align_corners=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not float(weight) >= 0:
            raise ValueError(f"DiscrepancyLoss: weight must be >= 0, got {weight}")
        if not 0.0 < float(keep_fraction) <= 1.0:
            raise ValueError(
                "DiscrepancyLoss: keep_fraction must be in (0, 1], got "
                f"{keep_fraction}"
            )
        if absolute not in _ABSOLUTE:
            raise ValueError(
                f"DiscrepancyLoss: absolute must be one of {_ABSOLUTE}, "
                f"got {absolute!r}"
            )
        self.weight = float(weight)
        self.keep_fraction = float(keep_fraction)
        self.absolute = absolute
        self.align_corners = bool(align_corners)
        self.eps = float(eps)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed, name="dda_seed")
        # No weights to create: the SeedGenerator is the only state.
        self.built = True

    def num_kept(self, num_maps):
        """Maps kept in training out of `num_maps` (at least 2, at most all)."""
        return min(num_maps, max(2, int(num_maps * self.keep_fraction)))

    def select_maps(self, maps, training=None):
        """Keep a random `keep_fraction` of the M maps of [B, H, W, M] in training."""
        total = maps.shape[-1]
        if total is None:
            raise ValueError("DiscrepancyLoss: the number of maps must be static")
        keep = self.num_kept(int(total))
        if not training or keep == total:
            return maps
        noise = keras.random.uniform((total,), seed=self.seed_generator)
        _, idx = ops.top_k(noise, keep, sorted=False)
        return ops.take(maps, idx, axis=-1)

    def call(self, level_maps, level_labels, training=None):
        maps = gather_target_maps(level_maps, level_labels, self.align_corners)
        maps = self.select_maps(maps, training)
        return self.weight * discrepancy_loss(maps, self.eps, self.absolute)

    def compute_output_spec(self, level_maps, level_labels, training=None):
        return keras.KerasTensor((), dtype="float32")

    def get_config(self):
        return {
            **super().get_config(),
            "weight": self.weight,
            "keep_fraction": self.keep_fraction,
            "absolute": self.absolute,
            "eps": self.eps,
            "seed": self.seed,
            "align_corners": self.align_corners,
        }
