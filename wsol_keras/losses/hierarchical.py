"""Hierarchical divergent activation (HDA) loss of DANet and class hierarchies.

Paper: "DANet: Divergent Activation for Weakly Supervised Object Localization" (Xue et al.),
Sec. 3.2 Eq. 3:

  L_H = sum_h L_h = - sum_h (1 / C^h) sum_c y_c^h log p_c^h,

a cross-entropy at every level h of a class hierarchy (CUB: 200 species ->
37 families -> 11 orders, Sec. 4.1). The released code (xuehaolan/DANet
vgg_DA.py `get_loss`) weights the three batch-mean cross-entropies by 0.5 each
instead of 1 / C^h; that is the default here (`level_weights`).

Hierarchy labels follow the dataset contract: element["hierarchy"] holds the
ancestor ids of element["label"], nearest parent first, so the labels of the
levels, leaf first, are [label, hierarchy[0], hierarchy[1], ...].

Data sets without a taxonomy: `cluster_hierarchy` builds one by k-means,
level by level, on per-class embeddings (e.g. the mean backbone feature of each
class's training images, or the rows of a trained classifier's weight matrix),
merging similar classes into parents as Sec. 3.2 describes ("merge them into
C^{h+1} parent classes based on the semantic similarity among the child
classes"); `ancestors_table` turns the result into the per-class ancestor rows
that a data pipeline gathers into element["hierarchy"].
"""

import keras
import numpy as np
from keras import ops


def hierarchy_level_labels(labels, hierarchy, num_levels):
    """Per-level class ids, leaf first: [labels, hierarchy[:, 0], ...].

    Args:
        labels: int [B] leaf class ids.
        hierarchy: int [B, L] ancestor ids, nearest parent first (L >= levels - 1).
        num_levels: levels wanted, including the leaf.

    Returns:
        list of `num_levels` int32 [B] tensors.
    """
    if num_levels < 1:
        raise ValueError(
            f"hierarchy_level_labels: num_levels must be >= 1, got " f"{num_levels}"
        )
    out = [ops.cast(ops.reshape(labels, (-1,)), "int32")]
    if num_levels > 1:
        depth = hierarchy.shape[-1]
        if depth is not None and depth < num_levels - 1:
            raise ValueError(
                f"hierarchy_level_labels: {num_levels} levels need {num_levels - 1} "
                f"ancestors per example, the 'hierarchy' field has {depth}"
            )
        for i in range(num_levels - 1):
            out.append(ops.cast(hierarchy[:, i], "int32"))
    return out


def hierarchical_cross_entropy(level_labels, level_logits, level_weights=None):
    """Per-example weighted sum over levels of softmax cross-entropy (Eq. 3).

    Args:
        level_labels: list of int [B] class ids, one per level.
        level_logits: list of [B, C_h] logits, same order.
        level_weights: one weight per level (default 0.5 each, released code).

    Returns:
        float32 [B]: sum_h w_h CE_h for each example (mean it for the batch loss).
    """
    if len(level_labels) != len(level_logits) or not level_logits:
        raise ValueError(
            "hierarchical_cross_entropy: need one label vector per "
            f"logits tensor, got {len(level_labels)} and "
            f"{len(level_logits)}"
        )
    if level_weights is None:
        level_weights = [0.5] * len(level_logits)
    if len(level_weights) != len(level_logits):
        raise ValueError(
            "hierarchical_cross_entropy: level_weights has "
            f"{len(level_weights)} entries for {len(level_logits)} "
            "levels"
        )
    total = 0.0
    for labels, logits, w in zip(level_labels, level_logits, level_weights):
        ce = keras.losses.sparse_categorical_crossentropy(
            ops.reshape(labels, (-1,)), ops.cast(logits, "float32"), from_logits=True
        )
        total = total + float(w) * ce
    return total


@keras.saving.register_keras_serializable(package="wsol_keras")
class HierarchicalCrossEntropy(keras.losses.Loss):
    """HDA loss (Eq. 3) as a Keras loss.

    y_true: int [B, L] class ids per level, leaf first (e.g. the concatenation
    of element["label"][:, None] and element["hierarchy"]). y_pred: list of L
    logits tensors [B, C_h], leaf first. Returns the weighted sum over levels,
    reduced over the batch by `reduction`.

    Args:
        level_weights: weight per level, leaf first (default 0.5 each).
    """

    def __init__(self, level_weights=None, name="hierarchical_cross_entropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.level_weights = (
            None if level_weights is None else [float(w) for w in level_weights]
        )

    def call(self, y_true, y_pred):
        levels = len(y_pred)
        labels = [y_true[:, i] for i in range(levels)]
        return hierarchical_cross_entropy(labels, list(y_pred), self.level_weights)

    def get_config(self):
        return {**super().get_config(), "level_weights": self.level_weights}


def _kmeans(x, k, seed, iters=100):
    """Plain Lloyd k-means with k-means++ seeding; returns int [n] assignments."""
    rng = np.random.default_rng(seed)
    n = x.shape[0]
    centers = [x[rng.integers(n)]]
    for _ in range(1, k):
        d2 = np.min(((x[:, None] - np.asarray(centers)[None]) ** 2).sum(-1), axis=1)
        p = d2 / d2.sum() if d2.sum() > 0 else np.full(n, 1.0 / n)
        centers.append(x[rng.choice(n, p=p)])
    centers = np.asarray(centers)
    assign = np.zeros(n, dtype=np.int64)
    for it in range(iters):
        new = np.argmin(((x[:, None] - centers[None]) ** 2).sum(-1), axis=1)
        # Keep every cluster non-empty: hand an empty one the farthest point.
        for c in range(k):
            if not np.any(new == c):
                far = np.argmax(((x - centers[new]) ** 2).sum(-1))
                new[far] = c
        if it > 0 and np.array_equal(new, assign):
            break
        assign = new
        centers = np.stack([x[assign == c].mean(0) for c in range(k)])
    return assign


def cluster_hierarchy(class_embeddings, level_sizes, seed=0):
    """Build a class hierarchy by k-means on class embeddings, level by level.

    Each level clusters the L2-normalized embeddings of the level below (a
    parent's embedding is the mean of its children's), so similar classes share
    a parent (DANet Sec. 3.2).

    Args:
        class_embeddings: float [C, D], one row per leaf class.
        level_sizes: number of classes of each parent level, nearest first and
          strictly decreasing (CUB: (37, 11)).
        seed: k-means seed.

    Returns:
        list of int arrays `parents`: parents[0][c] is the level-1 parent of leaf
        c, parents[l][p] the level-(l+1) parent of level-l class p.
    """
    x = np.asarray(class_embeddings, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(
            "cluster_hierarchy: class_embeddings must be [C, D], got "
            f"shape {x.shape}"
        )
    parents = []
    prev = x.shape[0]
    for size in level_sizes:
        if not 1 <= int(size) < prev:
            raise ValueError(
                "cluster_hierarchy: level_sizes must be strictly "
                f"decreasing below {x.shape[0]} classes, got "
                f"{tuple(level_sizes)}"
            )
        norm = np.linalg.norm(x, axis=1, keepdims=True)
        xn = x / np.where(norm > 0, norm, 1.0)
        assign = _kmeans(xn, int(size), seed)
        parents.append(assign.astype(np.int32))
        x = np.stack([x[assign == c].mean(0) for c in range(int(size))])
        prev = int(size)
    return parents


def ancestors_table(parents):
    """int32 [C, L] table: row c lists leaf c's ancestors, nearest parent first.

    Args:
        parents: as returned by `cluster_hierarchy` (or read from a taxonomy file).
    """
    if not parents:
        raise ValueError("ancestors_table: need at least one parent level")
    cols = [np.asarray(parents[0], dtype=np.int32)]
    for level in parents[1:]:
        cols.append(np.asarray(level, dtype=np.int32)[cols[-1]])
    return np.stack(cols, axis=1)
