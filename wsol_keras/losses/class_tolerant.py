"""Semantic-mistake tolerance of SLT-Net: the class-tolerant loss and top-K ACAM.

Reference: Guo et al., "Strengthen Learning Tolerance for Weakly Supervised
Object Localization", CVPR 2022 (SLT-Net), Sec. 3.3, Eq. 8 and Eq. 9.

Ties at the K-th place: the ground-truth class counts as "in the top-K" when
fewer than K classes have a *strictly* larger score than it. Classes tied with
the ground truth never push it out, so with scores [3, 2, 2, 1], ground truth
index 2 and K = 2 the sample gets the reduced loss alpha * CE. This is the
semantics of ``tf.math.in_top_k`` ("all classes that straddle the top-k
boundary are considered in the top k"). For the top-K averaged map (Eq. 9) an
index set of exactly K classes is needed; ties there are broken by
``keras.ops.top_k`` (lowest class index first).
"""

import keras
from keras import ops

from wsol_keras.localization.primitives import select_class_maps, topk_class_ids

__all__ = ["ClassTolerantLoss", "resolve_top_k", "topk_average_cams"]


def resolve_top_k(k, num_classes, name="k"):
    """Turns ``k`` (an absolute count or a fraction of the classes) into an int.

    Args:
        k: ``int`` (or an integral float >= 1) for an absolute number of
            classes, or a float in (0, 1) for a fraction of ``num_classes``
            (0.15 of 200 classes -> 30), rounded to the nearest integer.
        num_classes: the number of classes C (static last dimension of the
            logits).
        name: the argument's name, used in error messages.

    Returns:
        The integer K with ``1 <= K < num_classes``.

    Raises:
        ValueError: if ``num_classes`` is unknown or K falls outside [1, C).
    """
    if num_classes is None:
        raise ValueError(
            f"{name}={k!r}: the number of classes (last dimension of the "
            "logits) must be known statically to resolve the top-K size."
        )
    num_classes = int(num_classes)
    if isinstance(k, bool) or not isinstance(k, (int, float)):
        raise ValueError(
            f"{name} must be an int or a float fraction in (0, 1); got {k!r}."
        )
    if isinstance(k, float) and 0.0 < k < 1.0:
        resolved = int(round(k * num_classes))
    elif float(k) == int(k):
        resolved = int(k)
    else:
        raise ValueError(
            f"{name}={k!r} is neither an integer count nor a fraction in " "(0, 1)."
        )
    if not 1 <= resolved < num_classes:
        raise ValueError(
            f"{name}={k!r} resolves to K={resolved}, but SLT-Net needs "
            f"1 <= K < number of classes ({num_classes})."
        )
    return resolved


def _labels_to_index(y_true, num_classes):
    """Sparse ``[B]``/``[B, 1]`` or one-hot ``[B, C]`` labels -> int32 ``[B]``."""
    rank = len(y_true.shape)
    if rank >= 2 and y_true.shape[-1] == num_classes and num_classes != 1:
        return ops.cast(ops.argmax(y_true, axis=-1), "int32")
    if rank >= 2 and y_true.shape[-1] == 1:
        y_true = ops.squeeze(y_true, axis=-1)
    return ops.cast(y_true, "int32")


@keras.saving.register_keras_serializable(package="wsol_keras")
class ClassTolerantLoss(keras.losses.Loss):
    """Semantic mistakes tolerance loss L_SMT of SLT-Net (Eq. 8).

    Per sample::

        L_SMT = alpha * CE(x, y)   if the ground-truth score is in top-K(x)
                CE(x, y)           otherwise

    It equals the plain cross-entropy for ``k=1, alpha=1``. The top-K test
    is a hard selection (no gradient flows through it). Ties at the K-th
    place count as inside the top-K (see the module docstring). The
    computation is done in float32 even when ``y_pred`` is float16/bfloat16.

    Paper settings: CUB ``alpha=0.4, k=30`` of 200 (``k=0.15``); ILSVRC
    ``alpha=0.2, k=100`` of 1000 (``k=0.1``).

    Args:
        k: top-K size, an int, or a float in (0, 1) taken as a fraction of
            the number of classes (resolved against the last dimension of
            ``y_pred`` when the loss is called). Must resolve to
            ``1 <= K < C``.
        alpha: loss reduction factor for samples whose ground truth is in the
            top-K, ``0 <= alpha``; the paper uses ``0 <= alpha <= 1``.
        from_logits: whether ``y_pred`` are logits (True) or probabilities.
        reduction: Keras loss reduction (``"sum_over_batch_size"``, ``"sum"``,
            ``"mean_with_sample_weight"``, ``None``/``"none"``...).
        name: loss name.
        dtype: Keras loss dtype (defaults to ``keras.backend.floatx()``).

    Call args:
        y_true: int labels ``[B]`` / ``[B, 1]``, or one-hot ``[B, C]``.
        y_pred: logits (or probabilities) ``[B, C]``.
        sample_weight: optional per-sample weights ``[B]``.
    """

    def __init__(
        self,
        k=30,
        alpha=0.4,
        from_logits=True,
        reduction="sum_over_batch_size",
        name="class_tolerant_loss",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if isinstance(k, bool) or not isinstance(k, (int, float)) or k <= 0:
            raise ValueError(
                "ClassTolerantLoss: k must be a positive int or a fraction in "
                f"(0, 1); got k={k!r}."
            )
        if isinstance(k, float) and k >= 1.0 and k != int(k):
            raise ValueError(
                "ClassTolerantLoss: a float k >= 1 must be integral (an "
                f"absolute count); got k={k!r}."
            )
        alpha = float(alpha)
        if alpha < 0.0:
            raise ValueError(
                f"ClassTolerantLoss: alpha must be >= 0; got alpha={alpha!r}."
            )
        self.k = k
        self.alpha = alpha
        self.from_logits = bool(from_logits)

    def call(self, y_true, y_pred):
        y_pred = ops.cast(y_pred, "float32")
        num_classes = y_pred.shape[-1]
        top_k = resolve_top_k(self.k, num_classes, name="ClassTolerantLoss.k")
        labels = _labels_to_index(y_true, num_classes)

        ce = ops.sparse_categorical_crossentropy(
            labels, y_pred, from_logits=self.from_logits
        )
        onehot = ops.one_hot(labels, num_classes, dtype="float32")
        gt_score = ops.sum(y_pred * onehot, axis=-1, keepdims=True)
        # Rank of the GT = number of classes strictly above it (ties favour
        # the GT, as tf.math.in_top_k does).
        num_above = ops.sum(ops.cast(ops.greater(y_pred, gt_score), "int32"), axis=-1)
        in_top_k = ops.less(num_above, top_k)
        scale = ops.where(in_top_k, self.alpha, 1.0)
        return ops.stop_gradient(ops.cast(scale, "float32")) * ce

    def get_config(self):
        config = super().get_config()
        config.update(
            {"k": self.k, "alpha": self.alpha, "from_logits": self.from_logits}
        )
        return config


def topk_average_cams(cams, logits, k):
    """Top-K averaged class activation map, "top-K ACAM" (SLT-Net Eq. 9).

    ``A = (1/K) * sum_{j in top-K(logits)} M_j``.

    Args:
        cams: class maps ``[B, h, w, C]``.
        logits: class scores ``[B, C]`` used to rank the classes (logits or
            probabilities: only the order matters).
        k: int or fraction of C, resolved as in :func:`resolve_top_k`, but
            ``K = C`` (average of all maps) is also accepted here.

    Returns:
        float32 ``[B, h, w]`` localization maps.
    """
    num_classes = logits.shape[-1]
    if cams.shape[-1] is not None and num_classes is not None:
        if cams.shape[-1] != num_classes:
            raise ValueError(
                f"topk_average_cams: cams have {cams.shape[-1]} classes but "
                f"logits have {num_classes}."
            )
    if num_classes is not None and k == num_classes:
        top_k = int(k)
    else:
        top_k = resolve_top_k(k, num_classes, name="topk_average_cams k")
    cams = ops.cast(cams, "float32")
    return select_class_maps(cams, topk_class_ids(logits, top_k))
