"""Soft Proposal (SP) layer of Soft Proposal Networks (Zhu et al., CVPR 2017).

Paper: "Soft Proposal Networks for Weakly Supervised Object Localization" (Zhu et al.),
Sec. 3.1 (Eq. 1-2, soft proposal
generation), Sec. 3.2 (Eq. 3, coupling) and Sec. 3.3 (response maps). The
released code (yeezhu/SPN.pytorch, CUDA kernels `SP_Generate`/`SP_Couple`) fixes
the details the paper leaves open; they are followed here and noted where used.

Generation, per image, over the N = H * W positions of U [H, W, K]:

  D'[a, b] = ||u_a - u_b||_2 * exp(-dist(a, b)^2 / (2 eps^2))
  D[a, b]  = D'[a, b] / sum_a' D'[a', b]          (column-stochastic)
  M <- D M  (Eq. 1/2), M0 = 1/N, until ||D M - M||_2 < tol or max_iter updates.

Because every column of D sums to 1, M keeps summing to 1 (it is renormalized
after each update, as in the released code, to stop float drift).
Coupling (Eq. 3): V_k = U_k o M for every channel k.
"""

import keras
from keras import layers, ops


def _spatial_kernel(height, width, epsilon):
    """L(a, b) = exp(-((i-p)^2 + (j-q)^2) / (2 eps^2)) over the N x N positions.

    Positions are flattened row-major (n = i * W + j), like the reshape of U.
    """
    rows = ops.repeat(ops.arange(height, dtype="float32"), width)
    cols = ops.tile(ops.arange(width, dtype="float32"), [height])
    d2 = ops.square(rows[:, None] - rows[None, :]) + ops.square(
        cols[:, None] - cols[None, :]
    )
    return ops.exp(-d2 / (2.0 * ops.square(epsilon)))


def soft_proposal_graph(features, epsilon):
    """Column-stochastic transition matrix D of Sec. 3.1 for a batch of maps.

    Args:
        features: float32 [B, H, W, K] deep feature maps U.
        epsilon: spatial bandwidth eps of L(a, b), in feature-map cells (scalar).

    Returns:
        float32 [B, N, N] with D[b, a, c] the weight of the edge c -> a, every
        column summing to 1. A column whose D' weights are all zero (a node whose
        feature equals every other node's, e.g. an all-zero ReLU map) is set to the
        uniform 1/N, so the walk stays defined; on a constant map M stays 1/N.
    """
    shape = ops.shape(features)
    height, width, channels = shape[1], shape[2], shape[3]
    n = height * width
    u = ops.reshape(features, (-1, n, channels))
    sq = ops.sum(ops.square(u), axis=-1)
    # ||a - b||^2 = |a|^2 + |b|^2 - 2 a.b: one batched matmul instead of a
    # [B, N, N, K] difference tensor. The clamp removes tiny negative round-off;
    # the diagonal is exactly 0 by definition (u_a - u_a = 0).
    d2 = (
        sq[:, :, None]
        + sq[:, None, :]
        - 2.0 * ops.matmul(u, ops.transpose(u, (0, 2, 1)))
    )
    d2 = ops.maximum(d2, 0.0) * (1.0 - ops.eye(n, dtype="float32"))[None]
    positive = d2 > 0.0
    # sqrt has an infinite derivative at 0: take it only where d2 > 0 so the
    # optional gradient through the graph (stop_gradient_proposal=False) is finite.
    dist = ops.where(positive, ops.sqrt(ops.where(positive, d2, 1.0)), 0.0)
    weights = dist * _spatial_kernel(height, width, epsilon)[None]
    col_sum = ops.sum(weights, axis=1, keepdims=True)
    uniform = ops.ones_like(weights) / ops.cast(n, "float32")
    safe_sum = ops.where(col_sum > 0.0, col_sum, 1.0)
    return ops.where(col_sum > 0.0, weights / safe_sum, uniform)


def soft_proposal_random_walk(graph, max_iter=20, tol=1e-4):
    """Power iteration M <- D M (Eq. 1) from M0 = 1/N, batched with freezing.

    Each image stops updating once ||D M - M||_2 < tol (the released code's test,
    checked before the update, so a converged image keeps its last M); the loop
    ends when every image has converged or after `max_iter` updates. The loop is
    `keras.ops.while_loop` with `maximum_iterations=max_iter`, i.e. a
    `tf.while_loop` with a static bound: it runs in `tf.function` and under XLA
    (`jit_compile=True`), and stays differentiable if a caller wants gradients.

    Args:
        graph: float32 [B, N, N] column-stochastic D.
        max_iter: maximum number of updates.
        tol: L2 tolerance on D M - M per image.

    Returns:
        float32 [B, N] proposal vectors, each summing to 1.
    """
    n = ops.shape(graph)[-1]
    batch = ops.shape(graph)[0]
    m0 = ops.ones((batch, n), dtype="float32") / ops.cast(n, "float32")
    active0 = ops.ones((batch,), dtype="bool")

    def cond(i, m, active):
        return ops.logical_and(i < max_iter, ops.any(active))

    def body(i, m, active):
        m_new = ops.squeeze(ops.matmul(graph, m[:, :, None]), axis=-1)
        change = ops.sqrt(ops.sum(ops.square(m_new - m), axis=-1))
        update = ops.logical_and(active, change >= tol)
        m_new = m_new / ops.sum(m_new, axis=-1, keepdims=True)
        m = ops.where(update[:, None], m_new, m)
        return i + 1, m, update

    _, m, _ = ops.while_loop(
        cond, body, (ops.convert_to_tensor(0), m0, active0), maximum_iterations=max_iter
    )
    return m


@keras.saving.register_keras_serializable(package="wsol_keras")
class SoftProposal(layers.Layer):
    """Soft Proposal: graph random walk objectness map M coupled onto U (Eq. 1-3).

    `SoftProposal()(U)` returns V = U o M with U's shape [B, H, W, K]; with
    `return_proposal=True` it returns `(V, M)` with M float32 [B, H, W] summing
    to 1 over H x W. Works for any H, W (non-square and unknown-at-build sizes),
    batched and vectorized (no Python loop over images).

    Because M sums to 1, V is U scaled by ~1/N: follow the layer with a spatial
    SUM (`GlobalSumPooling2D`, the released code's `SpatialSumOverMap`), which is
    then the M-weighted average of U. The class response map of Sec. 3.3 is
    R_c = sum_k w_kc U_k o M, i.e. the classifier applied to V.

    Precision: the graph and the walk always run in float32 (the distances and
    the 1/N-sized probabilities are unsafe in float16); V comes back in the
    layer's compute dtype, M in float32.

    Cost: O(B N^2 K) for the distances (one batched matmul) and O(B N^2) memory
    per iteration; on a 14 x 14 x 1024 map (N = 196) about 80 MFLOPs per image,
    against ~15 GFLOPs for the VGG16 forward pass.

    Args:
        epsilon: spatial bandwidth eps of L(a, b) = exp(-(a^2+b^2) / (2 eps^2)) in
          feature-map cells. None means `epsilon_factor` x the longer side.
        epsilon_factor: the paper's eps = 0.15 N (Sec. 3.1), N the map side; for a
          non-square map the longer side is used. The released SPN model sets
          eps = 2.1 = 0.15 x 14 for its 14 x 14 maps (the released layer's own
          default, 0.15 x H x W, is nearly flat in space).
        max_iter: maximum random-walk updates (released code: 20).
        tol: stop once ||D M - M||_2 < tol (released code: 1e-4).
        stop_gradient_proposal: if True (released code, whose backward is
          grad_U = grad_V o M), no gradient flows through the construction of M;
          gradients reach U only through the product of Eq. 3. If False the graph
          and the walk are differentiated too (costlier; mostly for study).
        return_proposal: if True, call returns (V, M).
    """

    def __init__(
        self,
        epsilon=None,
        epsilon_factor=0.15,
        max_iter=20,
        tol=1e-4,
        stop_gradient_proposal=True,
        return_proposal=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if epsilon is not None and not float(epsilon) > 0:
            raise ValueError(
                f"SoftProposal: epsilon must be > 0 or None, got {epsilon}"
            )
        if not float(epsilon_factor) > 0:
            raise ValueError(
                f"SoftProposal: epsilon_factor must be > 0, got {epsilon_factor}"
            )
        if int(max_iter) < 1:
            raise ValueError(f"SoftProposal: max_iter must be >= 1, got {max_iter}")
        if not float(tol) >= 0:
            raise ValueError(f"SoftProposal: tol must be >= 0, got {tol}")
        self.epsilon = None if epsilon is None else float(epsilon)
        self.epsilon_factor = float(epsilon_factor)
        self.max_iter = int(max_iter)
        self.tol = float(tol)
        self.stop_gradient_proposal = bool(stop_gradient_proposal)
        self.return_proposal = bool(return_proposal)
        self.input_spec = keras.layers.InputSpec(ndim=4)

    def _epsilon(self, height, width):
        if self.epsilon is not None:
            return ops.convert_to_tensor(self.epsilon, dtype="float32")
        side = ops.maximum(ops.cast(height, "float32"), ops.cast(width, "float32"))
        return self.epsilon_factor * side

    def proposal(self, inputs):
        """M: float32 [B, H, W] for feature maps [B, H, W, K] (Eq. 1-2)."""
        u = ops.cast(inputs, "float32")
        if self.stop_gradient_proposal:
            # Cut here, not after the walk, so no backward graph is built for it.
            u = ops.stop_gradient(u)
        shape = ops.shape(u)
        graph = soft_proposal_graph(u, self._epsilon(shape[1], shape[2]))
        m = soft_proposal_random_walk(graph, self.max_iter, self.tol)
        return ops.reshape(m, (-1, shape[1], shape[2]))

    def call(self, inputs, training=None):
        m = self.proposal(inputs)
        v = inputs * ops.cast(m[..., None], inputs.dtype)  # Eq. 3
        if self.return_proposal:
            return v, m
        return v

    def compute_output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        if self.return_proposal:
            return input_shape, input_shape[:3]
        return input_shape

    def compute_output_spec(self, inputs, training=None):
        v = keras.KerasTensor(inputs.shape, dtype=self.compute_dtype)
        if self.return_proposal:
            return v, keras.KerasTensor(inputs.shape[:3], dtype="float32")
        return v

    def get_config(self):
        return {
            **super().get_config(),
            "epsilon": self.epsilon,
            "epsilon_factor": self.epsilon_factor,
            "max_iter": self.max_iter,
            "tol": self.tol,
            "stop_gradient_proposal": self.stop_gradient_proposal,
            "return_proposal": self.return_proposal,
        }


@keras.saving.register_keras_serializable(package="wsol_keras")
class GlobalSumPooling2D(layers.Layer):
    """Spatial sum [B, H, W, K] -> [B, K] (the released SPN's SpatialSumOverMap).

    After SoftProposal this is the M-weighted spatial average of U (Sec. 3.3).
    """

    def call(self, inputs):
        return ops.sum(inputs, axis=(1, 2))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])
