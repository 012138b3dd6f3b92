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

Three ways to run the walk (the `walk` argument), all the same Eq. 1 power
iteration from M0 = 1/N:
  "fixed"      exactly `max_iter` updates, no convergence test (a fori_loop);
  "squaring"   D^(2^k) by k = ceil(log2(max_iter)) repeated squarings, then
               M = D^(2^k) M0: 2^k >= max_iter steps in k batched matmuls;
  "tolerance"  the released code's loop: stop each image once
               ||D M - M||_2 < tol (a while_loop with a data-dependent exit).
Running past the tolerance only moves M closer to the fixed point of D, so the
three agree to about `tol`. "fixed" is the default: on a GPU the data-dependent
exit test of "tolerance" costs more than the arithmetic (a host-visible
condition per step), and "fixed" was the fastest on both the issue's H100/JAX
measurement and our CPU/TF one (bench/soft_proposal_overhead.py, BENCHMARKS.md).
"""

import math

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


def soft_proposal_graph(features, epsilon, gram_dtype="float32"):
    """Column-stochastic transition matrix D of Sec. 3.1 for a batch of maps.

    Args:
        features: float32 [B, H, W, K] deep feature maps U.
        epsilon: spatial bandwidth eps of L(a, b), in feature-map cells (scalar).
        gram_dtype: dtype of the one O(N^2 K) product, the Gram matrix u_a . u_b
          (e.g. "bfloat16" to use the accelerator's fast matmul under mixed
          precision). Its inputs are the mean-centred features rounded to that
          dtype; norms, distances and everything after are float32, from the same
          rounded features, so a pair's distance still comes out >= 0.

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
    # Distances do not change when every node moves by the same vector; centring
    # shrinks |a|^2 + |b|^2 - 2 a.b's terms, so less cancels in low precision.
    u = u - ops.mean(u, axis=1, keepdims=True)
    u_low = ops.cast(u, gram_dtype)
    u = ops.cast(u_low, "float32")
    sq = ops.sum(ops.square(u), axis=-1)
    gram = ops.cast(ops.matmul(u_low, ops.transpose(u_low, (0, 2, 1))), "float32")
    # ||a - b||^2 = |a|^2 + |b|^2 - 2 a.b: one batched matmul instead of a
    # [B, N, N, K] difference tensor. The clamp removes tiny negative round-off;
    # the diagonal is exactly 0 by definition (u_a - u_a = 0).
    d2 = sq[:, :, None] + sq[:, None, :] - 2.0 * gram
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


WALKS = ("fixed", "squaring", "tolerance")
EPSILON_BASES = ("side", "area")


def _uniform_start(graph):
    n = ops.shape(graph)[-1]
    return ops.ones((ops.shape(graph)[0], n), dtype="float32") / ops.cast(
        n, "float32"
    )


def _step(graph, m):
    m_new = ops.squeeze(ops.matmul(graph, m[:, :, None]), axis=-1)
    return m_new / ops.sum(m_new, axis=-1, keepdims=True)


def random_walk_fixed(graph, steps=20):
    """Exactly `steps` updates M <- D M / sum(D M) from M0 = 1/N (Eq. 1).

    No convergence test inside the loop, so the loop has a static trip count
    (`keras.ops.fori_loop`: a bounded loop under XLA, a `scan` on JAX, which
    both backends can differentiate).
    """
    return ops.fori_loop(0, int(steps), lambda i, m: _step(graph, m), _uniform_start(graph))


def random_walk_squaring(graph, steps=20):
    """M = D^(2^k) M0 with k = ceil(log2(steps)), D^(2^k) by repeated squaring.

    Same Eq. 1 iteration as `random_walk_fixed` with 2^k >= steps updates, in k
    batched [N, N] matmuls (k = 5 for 20 steps) instead of 2^k sequential
    matrix-vector products. Products of column-stochastic matrices stay
    column-stochastic, so no renormalization is needed until the end.
    """
    power = graph
    for _ in range(max(0, math.ceil(math.log2(int(steps))))):
        power = ops.matmul(power, power)
    # D^(2^k) M0 as a matrix-vector product, not the equal row mean: TF 2.21's
    # XLA on CPU crashes (segfault) on a mean fused after these batched dots.
    m = ops.squeeze(ops.matmul(power, _uniform_start(graph)[:, :, None]), axis=-1)
    return m / ops.sum(m, axis=-1, keepdims=True)


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
    m0 = _uniform_start(graph)
    active0 = ops.ones((ops.shape(graph)[0],), dtype="bool")

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

    Precision: the graph and the walk run in float32 (the distances and the
    1/N-sized probabilities are unsafe in float16); only the Gram matrix of the
    distances may use another dtype (`gram_dtype`). V comes back in the layer's
    compute dtype, M in float32.

    Backends: pure `keras.ops`, so it runs unchanged on TensorFlow, JAX and
    PyTorch (tested on TF and JAX).

    Cost: O(B N^2 K) for the distances (one batched matmul) and O(B N^2) memory
    per iteration; on a 14 x 14 x 1024 map (N = 196) about 80 MFLOPs per image,
    against ~15 GFLOPs for the VGG16 forward pass.

    Args:
        epsilon: spatial bandwidth eps of L(a, b) = exp(-(a^2+b^2) / (2 eps^2)) in
          feature-map cells. None means `epsilon_factor` x the longer side.
        epsilon_factor: the paper's eps = 0.15 N (Sec. 3.1), N the map side; for a
          non-square map the longer side is used. The released ImageNet model
          (SP_GoogLeNet) sets eps = 2.1 = 0.15 x 14 for its 14 x 14 maps; the
          released layer's own default, used by the released `vgg16_sp`, is
          0.15 x H x W (29.4 on 14 x 14, nearly flat in space):
          `epsilon_basis="area"`.
        epsilon_basis: what `epsilon_factor` multiplies: "side" (the longer
          side, the paper's N) or "area" (H x W, the released layer's
          ``0.15 * self.N``).
        max_iter: random-walk updates (released code: at most 20): exactly
          this many with walk="fixed", at most this many with "tolerance", and
          2^ceil(log2(max_iter)) with "squaring".
        tol: with walk="tolerance", stop once ||D M - M||_2 < tol (released
          code: 1e-4); the other walks ignore it.
        walk: "fixed" (default), "squaring" or "tolerance" (the released code's
          data-dependent stop); see the module docstring for why and how they
          agree.
        gram_dtype: dtype of the Gram matrix of the distances (the O(N^2 K)
          product): "float32" (default), or "compute" for the layer's compute
          dtype (bfloat16 / float16 under mixed precision: faster on GPUs and
          TPUs, M then moves by about 1e-3 relative, see the tests), or a dtype.
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
        walk="fixed",
        gram_dtype="float32",
        epsilon_basis="side",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if epsilon_basis not in EPSILON_BASES:
            raise ValueError(
                f"SoftProposal: epsilon_basis must be one of {EPSILON_BASES}, "
                f"got {epsilon_basis!r}"
            )
        self.epsilon_basis = epsilon_basis
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
        if walk not in WALKS:
            raise ValueError(f"SoftProposal: walk must be one of {WALKS}, got {walk!r}")
        if gram_dtype != "compute" and keras.backend.standardize_dtype(
            gram_dtype
        ) not in ("float16", "bfloat16", "float32", "float64"):
            raise ValueError(
                "SoftProposal: gram_dtype must be 'compute' or a float dtype, "
                f"got {gram_dtype!r}"
            )
        self.walk = walk
        self.gram_dtype = gram_dtype
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
        height, width = ops.cast(height, "float32"), ops.cast(width, "float32")
        if self.epsilon_basis == "area":
            return self.epsilon_factor * height * width
        return self.epsilon_factor * ops.maximum(height, width)

    def proposal(self, inputs):
        """M: float32 [B, H, W] for feature maps [B, H, W, K] (Eq. 1-2)."""
        u = ops.cast(inputs, "float32")
        if self.stop_gradient_proposal:
            # Cut here, not after the walk, so no backward graph is built for it.
            u = ops.stop_gradient(u)
        shape = ops.shape(u)
        gram_dtype = self.compute_dtype if self.gram_dtype == "compute" else self.gram_dtype
        graph = soft_proposal_graph(u, self._epsilon(shape[1], shape[2]), gram_dtype)
        if self.walk == "fixed":
            m = random_walk_fixed(graph, self.max_iter)
        elif self.walk == "squaring":
            m = random_walk_squaring(graph, self.max_iter)
        else:
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
            "walk": self.walk,
            "gram_dtype": self.gram_dtype,
            "epsilon_basis": self.epsilon_basis,
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
