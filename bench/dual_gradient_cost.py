"""Cost of DGL maps (wsol_keras.localization.dual_gradient) relative to a plain forward pass.

For each keras.applications model (weights=None, with its softmax top), times
a compiled forward pass on a batch and a compiled DualGradient call (one
forward under a tape plus the two vector-Jacobian products of Eq. 5/7 down to
the chosen layer), and prints the ratio DGL / forward. Target (issue 4): <= 3x.

    python bench/dual_gradient_cost.py                       # VGG16 + ResNet50, 224, batch 16
    python bench/dual_gradient_cost.py --image_size=112 --batch=4 --repeats=2
    python bench/dual_gradient_cost.py --models=vgg16 --batches=1,2,4,8,16  # scaling curve

The last line is one JSON object; its "ratio" is the largest ratio measured.
"""

import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from wsol_keras.localization.dual_gradient import DualGradient  # noqa: E402

MODELS = {
    # DGL paper: VGG conv5_3 / conv5_2 (Table 1); ResNet50 group2/block5 = conv4_block6_out.
    "vgg16": (keras.applications.VGG16, "block5_conv3"),
    "resnet50": (keras.applications.ResNet50, "conv4_block6_out"),
}


def _run(fn):
    start = time.perf_counter()
    out = fn()
    tf.nest.map_structure(lambda t: t.numpy() if hasattr(t, "numpy") else t, out)
    return time.perf_counter() - start


def timed_pair(fn_a, fn_b, repeats):
    """Medians of interleaved runs (a, b, a, b, ...) after one warm-up each.

    Interleaving keeps load from other processes on a shared machine from
    landing on one side of the ratio only.
    """
    _run(fn_a)
    _run(fn_b)
    times_a, times_b = [], []
    for _ in range(repeats):
        times_a.append(_run(fn_a))
        times_b.append(_run(fn_b))
    return statistics.median(times_a), statistics.median(times_b)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="vgg16,resnet50")
    parser.add_argument("--image_size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument(
        "--batches",
        default="",
        help="comma-separated batch sizes: the ratio's batch-size scaling curve "
        "(overrides --batch)",
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--method", default="dgl", choices=("dgl", "pcs", "gradcam"))
    parser.add_argument(
        "--layer", default=None, help="override the layer of every model"
    )
    args = parser.parse_args(argv)

    batches = [int(b) for b in args.batches.split(",") if b] or [args.batch]
    rng = np.random.default_rng(0)
    results = []
    for name in args.models.split(","):
        ctor, layer = MODELS[name]
        layer = args.layer or layer
        model = ctor(weights=None, input_shape=(args.image_size, args.image_size, 3))
        forward = tf.function(lambda x, m=model: m(x, training=False))
        dgl = DualGradient(model, layer, method=args.method)
        for batch in batches:
            images = tf.constant(
                rng.uniform(-1, 1, (batch, args.image_size, args.image_size, 3))
                .astype(np.float32)
            )
            t_fwd, t_dgl = timed_pair(
                lambda: forward(images), lambda: dgl(images), args.repeats
            )
            row = {
                "model": name,
                "layer": layer,
                "batch": batch,
                "forward_s": round(t_fwd, 4),
                "dgl_s": round(t_dgl, 4),
                "ratio": round(t_dgl / t_fwd, 3),
            }
            results.append(row)
            print(
                f"{name:9s} layer={layer:18s} batch={batch} size={args.image_size} "
                f"forward={t_fwd:.3f}s {args.method}={t_dgl:.3f}s "
                f"ratio={t_dgl / t_fwd:.2f}",
                flush=True,
            )
        del model, dgl, forward
        keras.backend.clear_session()
    print(
        json.dumps(
            {
                "benchmark": "dual_gradient_cost",
                "method": args.method,
                "image_size": args.image_size,
                "batches": batches,
                "device": (
                    "cpu" if not tf.config.list_physical_devices("GPU") else "gpu"
                ),
                "results": results,
                "ratio": max(r["ratio"] for r in results),
            }
        )
    )


if __name__ == "__main__":
    main()
