"""The CAM family on any layer: maps from a layer's activations and gradients.

Every function takes one layer's activations ``A`` float32 ``[B, H, W, K]``
and, for the gradient methods, ``G = d l_c / d A`` (the gradient of the target
class's logit, the same tensor as DGL's ``g_H``) and returns raw maps
``[B, H, W]`` (not normalized: the map step upsamples and min-max normalizes).
`wsol_keras.localization.dual_gradient.DualGradient` records ``A`` and ``G``
in one forward and one backward pass and dispatches here; the maps follow
pytorch-grad-cam (jacobgil/pytorch-grad-cam) where a paper leaves a choice,
and each function's docstring says which choice was made. All of them end in a
ReLU over the weighted sum, as the papers and pytorch-grad-cam's ``BaseCAM``.

Exportability (SavedModel / TFLite): ``eigencam`` needs no gradient and no
extra pass (matrix products and a top-1 index only), ``scorecam`` no gradient
but N more forward passes of the model (a ``tf.while_loop``); the gradient
methods need the backward pass in the serving graph (see
`wsol_keras.export.tflite_lib` for what the converter does with it).
"""

import tensorflow as tf

__all__ = [
    "EIGEN_SQUARINGS",
    "SCORECAM_DEFAULT_CHANNELS",
    "eigencam",
    "gradcam_plus_plus",
    "hirescam",
    "layercam",
    "scorecam",
    "scorecam_weights",
    "weighted_sum",
    "xgradcam",
]

# Repeated squarings of the covariance in `eigencam` (2**12 = 4096 power steps).
EIGEN_SQUARINGS = 12
# Default cap on the channels of Score-CAM (top-N by mean activation).
SCORECAM_DEFAULT_CHANNELS = 32


def _safe_divide(num, den):
    """num / den where den != 0, else 0 (no epsilon that would swamp small values)."""
    ok = tf.not_equal(den, 0.0)
    return tf.where(ok, num / tf.where(ok, den, tf.ones_like(den)), tf.zeros_like(num))


def weighted_sum(weights, acts):
    """ReLU(sum_k w_k A_k): weights [B, K] (or [B, 1, 1, K]) -> [B, H, W]."""
    w = tf.reshape(weights, [tf.shape(acts)[0], 1, 1, -1])
    return tf.nn.relu(tf.reduce_sum(w * acts, axis=-1))


def gradcam_plus_plus(acts, grads):
    """Grad-CAM++ (Chattopadhay et al., WACV 2018, Eq. 19 and Eq. 9-10).

    With the exponential output ``Y^c = exp(S^c)`` and a piecewise linear
    network, the second and third derivatives of ``Y^c`` are ``exp(S^c) G^2``
    and ``exp(S^c) G^3``, so Eq. 10 becomes the closed form of Eq. 19::

        alpha_ij^k = G_ij^2 / (2 G_ij^2 + sum_ab A_ab^k G_ij^3)
        w_k = sum_ij alpha_ij^k relu(G_ij^k)
        map = relu(sum_k w_k A^k)

    The factor ``exp(S^c)`` of ``relu(dY/dA)`` is a positive constant per
    image: it commutes with both ReLUs and cancels in the min-max
    normalization, so it is left out (pytorch-grad-cam leaves it out too).
    Choice: ``alpha = 0`` where the denominator is 0 (``G = 0``), as the paper
    says for zero gradients; pytorch-grad-cam instead adds 1e-6 to the
    denominator, which dominates when gradients are below ~1e-3 (deep layers
    of wide networks) and is not used here.

    Args:
        acts: float32 [B, H, W, K] activations.
        grads: float32 [B, H, W, K] gradients of the class logit.

    Returns:
        float32 [B, H, W].
    """
    g2 = tf.square(grads)
    g3 = g2 * grads
    sum_a = tf.reduce_sum(acts, axis=(1, 2), keepdims=True)
    alpha = _safe_divide(g2, 2.0 * g2 + sum_a * g3)
    weights = tf.reduce_sum(alpha * tf.nn.relu(grads), axis=(1, 2))
    return weighted_sum(weights, acts)


def xgradcam(acts, grads):
    """XGrad-CAM (Fu et al., "Axiom-based Grad-CAM", BMVC 2020, Sec. 3.2).

    The weights that satisfy the sensitivity and conservation axioms::

        w_k = sum_ij (A_ij^k / sum_ab A_ab^k) G_ij^k
        map = relu(sum_k w_k A^k)

    Choice: channels whose activations sum to 0 get ``w_k = 0`` (their map is
    all zero after a ReLU layer anyway); pytorch-grad-cam adds 1e-7 to the sum.

    Args:
        acts: float32 [B, H, W, K].
        grads: float32 [B, H, W, K].

    Returns:
        float32 [B, H, W].
    """
    sum_a = tf.reduce_sum(acts, axis=(1, 2))
    weights = _safe_divide(tf.reduce_sum(acts * grads, axis=(1, 2)), sum_a)
    return weighted_sum(weights, acts)


def layercam(acts, grads):
    """LayerCAM (Jiang et al., TIP 2021, Sec. III-B): a weight per location.

    ``map = relu(sum_k relu(G^k) * A^k)`` (element-wise), as pytorch-grad-cam.

    Args:
        acts: float32 [B, H, W, K].
        grads: float32 [B, H, W, K].

    Returns:
        float32 [B, H, W].
    """
    return tf.nn.relu(tf.reduce_sum(tf.nn.relu(grads) * acts, axis=-1))


def hirescam(acts, grads):
    """HiResCAM (Draelos & Carin, "Use HiResCAM instead of Grad-CAM", 2020).

    ``map = relu(sum_k G^k * A^k)`` (element-wise product, no averaging of the
    gradient). Before the ReLU this is DGL's pixel-level class selection
    (``pcs``, Tan et al. 2020, Eq. 5); the ReLU is pytorch-grad-cam's.

    Args:
        acts: float32 [B, H, W, K].
        grads: float32 [B, H, W, K].

    Returns:
        float32 [B, H, W].
    """
    return tf.nn.relu(tf.reduce_sum(grads * acts, axis=-1))


def _top_eigenvector(cov, squarings):
    """Unit eigenvector of the largest eigenvalue of PSD ``cov`` [B, D, D].

    Repeated squaring (``P <- P @ P`` normalized by its trace, i.e. 2**n power
    steps) then the column of P with the largest diagonal entry: only
    matrix products, so it converts to TFLite builtins (tf.linalg.svd/eigh do
    not). When the two largest eigenvalues are within a ratio of ~1 - 1e-3
    the component itself is ill-defined and the result is a mix of both.
    """
    d = tf.shape(cov)[-1]
    eye = tf.eye(d, dtype=cov.dtype)[None]

    def normalize(p):
        tr = tf.reduce_sum(p * eye, axis=(1, 2), keepdims=True)
        return _safe_divide(p, tr)

    p = normalize(cov)
    for _ in range(squarings):
        p = normalize(tf.matmul(p, p))
    diag = tf.reduce_sum(p * eye, axis=-1)  # [B, D]
    pick = tf.one_hot(tf.argmax(diag, axis=-1), d, dtype=p.dtype)  # [B, D]
    col = tf.reduce_sum(p * pick[:, None, :], axis=-1)  # [B, D]
    return tf.math.l2_normalize(col, axis=-1)


def eigencam(acts, squarings=EIGEN_SQUARINGS):
    """Eigen-CAM (Muhammad & Yeasin, IJCNN 2020, Sec. III): no gradients.

    The activations of each image as a matrix ``X`` [H*W, K] are projected on
    their first principal component (first right singular vector ``v1``):
    ``map = relu(X v1)`` reshaped to [H, W]. Choices, following
    pytorch-grad-cam's ``get_2d_projection``: ``X`` is centered over the
    locations (each channel minus its spatial mean) before the decomposition
    (the paper does not center), and the projection is of the centered ``X``.

    Sign convention: a singular vector's sign is arbitrary (LAPACK returns
    either), so ``v1`` is oriented to make the map correlate positively with
    the channel-mean activation map ``mean_k A^k``: the map is high where the
    layer is active. The map is class-agnostic (the target class is unused).

    Implementation: ``v1`` is the top eigenvector of ``X^T X`` [K, K] (or
    ``u1`` of ``X X^T`` [HW, HW] when H*W < K, ``v1 = X^T u1 / |X^T u1|``),
    found by repeated squaring (`_top_eigenvector`; exported graphs convert).

    Args:
        acts: float32 [B, H, W, K].
        squarings: repeated squarings (2**squarings power-iteration steps).

    Returns:
        float32 [B, H, W].
    """
    shape = tf.shape(acts)
    b, h, w, k = shape[0], shape[1], shape[2], acts.shape[-1]
    x = tf.reshape(acts, [b, -1, k])
    x = x - tf.reduce_mean(x, axis=1, keepdims=True)
    hw_static = (
        acts.shape[1] * acts.shape[2]
        if acts.shape[1] is not None and acts.shape[2] is not None
        else None
    )
    if hw_static is not None and hw_static < k:
        u = _top_eigenvector(tf.matmul(x, x, transpose_b=True), squarings)  # [B, HW]
        v = tf.math.l2_normalize(tf.linalg.matvec(x, u, transpose_a=True), axis=-1)
    else:
        v = _top_eigenvector(tf.matmul(x, x, transpose_a=True), squarings)  # [B, K]
    proj = tf.linalg.matvec(x, v)  # [B, HW]
    mean_map = tf.reduce_mean(tf.reshape(acts, [b, -1, k]), axis=-1)
    sign = tf.where(tf.reduce_sum(proj * mean_map, axis=-1, keepdims=True) < 0, -1.0, 1.0)
    return tf.nn.relu(tf.reshape(proj * sign, [b, h, w]))


def scorecam_weights(acts, images, class_probability, num_channels, target):
    """Score-CAM channel selection and weights (Wang et al., CVPRW 2020, Sec. 3).

    For each of the ``N = min(num_channels, K)`` channels with the largest
    mean activation (per image), the channel's map is upsampled (bilinear,
    half-pixel centers as the official code's ``F.interpolate(...,
    align_corners=False)``) to the image size, min-max normalized to
    ``H_k`` in [0, 1], and the model is run on the masked image ``X * H_k``
    (the image in the model's own input domain: [0, 255] pixels for this
    package's models, so masked-out pixels are black). The weight is the
    softmax probability of the target class on it, ``alpha_k = softmax(f(X *
    H_k))_c``, and ``map = relu(sum_k alpha_k A^k)`` over the N channels.

    Choices: the paper's baseline term ``f(X_b)`` is left out and channels
    with a constant map get weight 0, as the authors' code does;
    pytorch-grad-cam instead takes a softmax over the channels of the masked
    logits and masks the normalized tensor (mean colour outside the mask).
    The channel cap is this package's (pytorch-grad-cam uses every channel).

    Cost: N extra forward passes per image, run as N batched passes of B
    masked images (a ``tf.while_loop``), on top of the recording forward.

    Args:
        acts: float32 [B, h, w, K].
        images: float32 [B, S, S, 3].
        class_probability: callable ``images [B, S, S, 3] -> probabilities
            [B, C]`` (the model's softmax).
        num_channels: the cap N.
        target: int32 [B] target classes.

    Returns:
        (weights float32 [B, N], channel ids int32 [B, N]).
    """
    k = acts.shape[-1]
    n = min(int(num_channels), int(k))
    means = tf.reduce_mean(acts, axis=(1, 2))  # [B, K]
    top = tf.math.top_k(means, k=n).indices  # [B, N]
    size = tf.shape(images)[1:3]

    def one_pass(channel_ids):  # [B] -> [B] weights
        sel = tf.gather(acts, channel_ids, axis=3, batch_dims=1)[..., None]
        up = tf.image.resize(sel, size, method="bilinear")
        lo = tf.reduce_min(up, axis=(1, 2, 3), keepdims=True)
        hi = tf.reduce_max(up, axis=(1, 2, 3), keepdims=True)
        mask = _safe_divide(up - lo, hi - lo)
        probs = class_probability(images * mask)
        p = tf.gather(probs, target, batch_dims=1)
        return tf.where(tf.reshape(hi > lo, [-1]), p, tf.zeros_like(p))

    weights = tf.map_fn(
        one_pass, tf.transpose(top), fn_output_signature=tf.float32
    )  # [N, B]
    return tf.transpose(weights), top


def scorecam(acts, images, class_probability, num_channels, target):
    """Score-CAM map ``relu(sum_k alpha_k A^k)`` over the capped channels.

    Args:
        acts, images, class_probability, num_channels, target: see
            `scorecam_weights`.

    Returns:
        float32 [B, h, w].
    """
    weights, top = scorecam_weights(acts, images, class_probability, num_channels, target)
    selected = tf.gather(acts, top, axis=3, batch_dims=1)  # [B, h, w, N]
    return weighted_sum(weights, selected)
