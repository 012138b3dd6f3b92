"""How far the SoftProposal walks are from the released SPN kernels' M.

The reference is a float64 copy of yeezhu/SPN.pytorch's ``SP_Generate``
(spnlib/spn/src/generic/SoftProposalGenerator.cu): distance metric
exp(-d^2 / (2 factor^2)), transfer matrix ||u_a - u_b|| x metric, columns
normalized, M0 = 1/N, then per step ``diff = D M - buf`` (buf = the last
un-normalized D M), stop when ||diff||_2 < tol = 1e-4, ``buf += diff``,
``M = buf / sum(buf)``, at most 20 steps.  Features: post-ReLU Gaussian noise
[14, 14, K] with a random blob of higher activation (VGG16 conv5 size at 224).
For each eps (the paper's / SP_GoogLeNet's 2.1 and the released layer's default
0.15 x 14 x 14 = 29.4) and walk, reports the largest relative error of one
element of M and the relative L2 error over --images images.

Usage:
  python bench/spn_walk_vs_released.py --images=16 --channels=1024

The last printed line is one JSON object.
"""

import argparse
import json

import numpy as np

from wsol_keras.layers.soft_proposal import WALKS, SoftProposal


def released_proposal(u, factor, tol=1e-4, max_iter=20):
    """M of one [H, W, K] map as the released CUDA loop computes it (float64)."""
    h, w, k = u.shape
    x = u.reshape(-1, k).astype(np.float64)
    sq = (x * x).sum(1)
    dist = np.sqrt(np.maximum(sq[:, None] + sq[None] - 2 * x @ x.T, 0.0))
    i, j = np.divmod(np.arange(h * w), w)
    metric = np.exp(
        ((i[:, None] - i[None]) ** 2 + (j[:, None] - j[None]) ** 2) / (-2 * factor**2)
    )
    d = dist * metric
    d = d / d.sum(0, keepdims=True)
    m = np.full(h * w, 1.0 / (h * w))
    buf = m.copy()
    for _ in range(max_iter):
        diff = d @ m - buf
        if np.linalg.norm(diff) < tol:
            break
        buf = buf + diff
        m = buf / buf.sum()
    return m.reshape(h, w)


def features(rng, images, channels, side=14):
    u = np.maximum(rng.standard_normal((images, side, side, channels)), 0.0)
    yy, xx = np.mgrid[:side, :side]
    for b in range(images):
        cy, cx = rng.integers(3, side - 3, 2)
        u[b] *= 1 + 2 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 8.0)[..., None]
    return u.astype(np.float32)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--channels", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    u = features(np.random.default_rng(args.seed), args.images, args.channels)
    rows = []
    for basis, eps in (("side", 2.1), ("area", 29.4)):
        ref = np.stack([released_proposal(x, eps) for x in u])
        for walk in WALKS:
            layer = SoftProposal(epsilon_basis=basis, walk=walk, return_proposal=True)
            m = np.asarray(layer(u)[1], np.float64)
            rel = np.abs(m - ref) / ref
            l2 = np.linalg.norm((m - ref).reshape(len(u), -1), axis=1) / np.linalg.norm(
                ref.reshape(len(u), -1), axis=1
            )
            row = {
                "epsilon_basis": basis,
                "epsilon": eps,
                "walk": walk,
                "max_element_rel_err_pct": round(100 * float(rel.max()), 4),
                "max_image_rel_l2_err_pct": round(100 * float(l2.max()), 4),
            }
            print(row)
            rows.append(row)
    print(json.dumps({"images": args.images, "channels": args.channels, "rows": rows}))


if __name__ == "__main__":
    main()
