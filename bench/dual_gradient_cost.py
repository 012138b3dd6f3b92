"""Cost of DGL maps (wsol_keras.localization.dual_gradient) relative to a plain forward pass.

For each keras.applications model (weights=None, with its softmax top), times
a compiled forward pass on a batch and a compiled DualGradient call (one
forward under a tape plus the two vector-Jacobian products of Eq. 5/7 down to
the chosen layer), and prints the ratio DGL / forward. Target (issue 4): <= 3x.

    python bench/dual_gradient_cost.py                       # VGG16 + ResNet50, 224, batch 16
    python bench/dual_gradient_cost.py --image_size=112 --batch=4 --repeats=2
    python bench/dual_gradient_cost.py --models=vgg16 --batches=1,2,4,8,16  # scaling curve

With ``--map_step``, times the package's whole map step instead
(`wsol_keras.evaluation.evaluator.make_map_fn`: model outputs + maps of the
given classes, upsampled and normalized) against one forward pass of the same
model, for every map method, on the DGL paper's CUB VGG16 classifier
(configs/cub_vgg16_dgl.py, weights=None, 200 classes):

    python bench/dual_gradient_cost.py --map_step --image_size=224 --batch=8 --repeats=5
    python bench/dual_gradient_cost.py --map_step --image_size=112 --batch=4 --repeats=3 \
        --map_methods=cam,gradcam,gradcam++,xgradcam,layercam,hirescam,eigencam,scorecam

Score-CAM's cost grows with ``--scorecam_channels`` (N masked forward passes
per image on top of the recording forward).

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


def _timed_pair_all(fn_a, fn_b, repeats):
    """Like `timed_pair`, returning every interleaved time of each side."""
    _run(fn_a)
    _run(fn_b)
    times_a, times_b = [], []
    for _ in range(repeats):
        times_a.append(_run(fn_a))
        times_b.append(_run(fn_b))
    return times_a, times_b


def map_step(args):
    """Map step / forward for each map method on the CUB VGG16 DGL classifier."""
    from wsol_keras.configs import cub_vgg16_dgl
    from wsol_keras.evaluation import evaluator
    from wsol_keras.localization import maps as localization
    from wsol_keras.models import registry

    config = cub_vgg16_dgl.get_config()
    with config.unlocked():
        config.data.image_size = args.image_size
        config.model.weights = None
        config.eval.ten_crop = False
        config.eval.scorecam_channels = args.scorecam_channels
    info = {"num_classes": 200, "hierarchy_sizes": [200], "image_size": args.image_size}
    model = registry.build_model(config, info)
    rng = np.random.default_rng(0)
    images = tf.constant(
        rng.uniform(0, 255, (args.batch, args.image_size, args.image_size, 3)).astype(np.float32)
    )
    labels = tf.constant(rng.integers(0, 200, args.batch).astype(np.int32))
    forward = tf.function(lambda x: model(x, training=False))
    layer = args.layer or config.eval.dgl_layer
    results = []
    for method in args.map_methods.split(","):
        with config.unlocked():
            config.eval.map_method = method
            config.eval.dgl_layer = (
                layer if method in localization.GRADIENT_MAP_METHODS else ""
            )
        fn = evaluator.make_map_fn(model, config)
        t_fwd, t_map = _timed_pair_all(
            lambda: forward(images), lambda: fn(images, labels), args.repeats
        )
        row = {
            "map_method": method,
            "layer": config.eval.dgl_layer,
            "scorecam_channels": args.scorecam_channels if method == "scorecam" else None,
            "forward_s": [round(t, 3) for t in t_fwd],
            "map_step_s": [round(t, 3) for t in t_map],
            "ratio_median": round(statistics.median(t_map) / statistics.median(t_fwd), 3),
            "ratio_min": round(min(t_map) / min(t_fwd), 3),
        }
        results.append(row)
        print(
            f"{method:9s} forward min/median {min(t_fwd):.3f}/{statistics.median(t_fwd):.3f}s "
            f"map step {min(t_map):.3f}/{statistics.median(t_map):.3f}s "
            f"ratio {row['ratio_min']:.2f} (min) {row['ratio_median']:.2f} (median)",
            flush=True,
        )
    print(json.dumps({
        "benchmark": "dual_gradient_cost --map_step",
        "model": "cub_vgg16_dgl (weights=None, 200 classes)",
        "image_size": args.image_size,
        "batch": args.batch,
        "repeats": args.repeats,
        "results": results,
        "ratio": max(r["ratio_median"] for r in results),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }))


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
    parser.add_argument(
        "--method", default="dgl",
        choices=("dgl", "pcs", "gradcam", "gradcam++", "xgradcam", "layercam",
                 "hirescam", "eigencam", "scorecam"),
    )
    parser.add_argument(
        "--layer", default=None, help="override the layer of every model"
    )
    parser.add_argument(
        "--map_step", action="store_true",
        help="time the package's map step (every map method) against a forward pass",
    )
    parser.add_argument(
        "--map_methods",
        default="cam,dgl,pcs,gradcam,gradcam++,xgradcam,layercam,hirescam,eigencam,scorecam",
    )
    parser.add_argument(
        "--scorecam_channels", type=int, default=32,
        help="Score-CAM channel cap N (N masked forward passes per image)",
    )
    args = parser.parse_args(argv)
    if args.map_step:
        return map_step(args)

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
