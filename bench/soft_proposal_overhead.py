"""Training-step overhead of SoftProposal (SPN Sec. 3, "nearly cost-free").

Builds, in one process, the released SPN head on a keras.applications backbone
(weights=None, include_top=False): 3x3 conv to 1024 + ReLU, [SoftProposal],
spatial sum pooling, dropout 0.5, dense to C; the "plain" (CAM-style) model is
the same without SoftProposal. Times one SGD training step of each (after
warm-up, alternating plain / SP steps so background load hits both alike) for
every random-walk mode in --walks, and reports the medians and the SP/plain
ratios. Also times the SoftProposal layer alone (compiled forward, and forward +
backward) on the head's [B, h, w, 1024] features for every walk.

Runs on any Keras backend: with KERAS_BACKEND=jax it imports no TensorFlow
(only the layer modules of wsol_keras), so it can run on an accelerator machine
that has Keras + JAX but no TF.

Usage:
  python bench/soft_proposal_overhead.py --backbones=vgg16 --image_size=224 \
      --batch_size=8 --steps=5 --warmup=2 --walks=fixed,squaring,tolerance \
      [--precision=mixed_bfloat16] [--jit_compile=auto|true|false]
  KERAS_BACKEND=jax python bench/soft_proposal_overhead.py ...

The last printed line is one JSON object.
"""

import argparse
import importlib.util
import json
import os
import statistics
import sys
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

BACKEND = keras.backend.backend()


def _import_soft_proposal():
    """The layer module alone: `import wsol_keras` would pull in TF-only parts."""
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir)
    path = os.path.join(root, "wsol_keras", "layers", "soft_proposal.py")
    spec = importlib.util.spec_from_file_location("wsol_soft_proposal", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


_sp = _import_soft_proposal()
GlobalSumPooling2D, SoftProposal = _sp.GlobalSumPooling2D, _sp.SoftProposal

# Feature layer as in the released SPN (VGG16 without pool5: 14x14 at 224).
APPS = {
    "vgg16": (keras.applications.VGG16, "block5_conv3"),
    "resnet50": (keras.applications.ResNet50, "conv5_block3_out"),
}


def build(backbone, image_size, num_classes, walk, jit_compile):
    """The SPN head on `backbone`; walk=None builds the plain head (no SP)."""
    ctor, feature_layer = APPS[backbone]
    base = ctor(
        include_top=False, weights=None, input_shape=(image_size, image_size, 3)
    )
    features = base.get_layer(feature_layer).output
    x = keras.layers.Conv2D(1024, 3, padding="same", activation="relu")(features)
    if walk:
        x = SoftProposal(epsilon=2.1, walk=walk)(x)
    x = GlobalSumPooling2D()(x)
    x = keras.layers.Dropout(0.5)(x)
    out = keras.layers.Dense(num_classes, dtype="float32")(x)
    model = keras.Model(base.input, out)
    model.compile(
        optimizer=keras.optimizers.SGD(0.001, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=jit_compile,
    )
    return model


def timed(fn):
    """(wall seconds, process CPU seconds over all threads) of one call.

    On a shared machine the wall time swings with other processes' load; the
    CPU time this process spends is much steadier (meaningful on CPU only).
    """
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def compiled_layer_fns(layer, weights):
    """(forward, forward+backward) of `layer`, compiled the backend's way."""
    if BACKEND == "jax":
        import jax

        def loss(u):
            return (layer(u) * weights).sum()

        fwd, fb = jax.jit(layer.__call__), jax.jit(jax.grad(loss))
        return (lambda u: fwd(u).block_until_ready()), (
            lambda u: fb(u).block_until_ready()
        )
    if BACKEND == "tensorflow":
        import tensorflow as tf

        @tf.function
        def forward_backward(u):
            with tf.GradientTape() as tape:
                tape.watch(u)
                loss = tf.reduce_sum(layer(u) * weights)
            return tape.gradient(loss, u)

        fwd = tf.function(layer)
        return (lambda u: fwd(u).numpy()), (lambda u: forward_backward(u).numpy())
    raise ValueError(f"layer timing not implemented for backend {BACKEND}")


def device_name():
    if BACKEND == "jax":
        import jax

        return str(jax.devices()[0])
    if BACKEND == "tensorflow":
        import tensorflow as tf

        return "GPU" if tf.config.list_physical_devices("GPU") else "CPU"
    return BACKEND


def layer_only(res, walks, args, rng, wall=None):
    """Times the SoftProposal layer alone on [B, h, w, 1024] for every walk.

    Short compiled calls, many times, walks interleaved call by call, are far
    less sensitive to background load than whole steps; CPU time (all threads
    of this process) is reported next to wall time for the shared CPU machine.
    """
    dtype = keras.mixed_precision.dtype_policy().compute_dtype
    feats = keras.ops.convert_to_tensor(
        rng.uniform(0, 1, (args.batch_size, *res["feature_map"])), dtype=dtype
    )
    grad_w = keras.ops.convert_to_tensor(
        rng.uniform(0, 1, tuple(feats.shape)), dtype=dtype
    )
    fns = {
        walk: compiled_layer_fns(SoftProposal(epsilon=2.1, walk=walk), grad_w)
        for walk in walks
    }
    for fwd, fb in fns.values():
        for _ in range(3):
            fwd(feats)
            fb(feats)
    times = {w: {"fwd": [], "fwd_cpu": [], "fb": [], "fb_cpu": []} for w in walks}
    for _ in range(args.layer_reps):
        for walk, (fwd, fb) in fns.items():
            w, c = timed(lambda: fwd(feats))
            times[walk]["fwd"].append(w)
            times[walk]["fwd_cpu"].append(c)
            w, c = timed(lambda: fb(feats))
            times[walk]["fb"].append(w)
            times[walk]["fb_cpu"].append(c)
    for walk in walks:
        t = {k: 1000 * statistics.median(v) for k, v in times[walk].items()}
        r = res.setdefault(walk, {})
        r.update(
            {
                "layer_forward_ms_per_batch": t["fwd"],
                "layer_forward_cpu_ms_per_batch": t["fwd_cpu"],
                "layer_train_ms_per_batch": t["fb"],
                "layer_train_cpu_ms_per_batch": t["fb_cpu"],
            }
        )
        line = (
            f"walk={walk}: layer alone on {res['feature_map']} x {args.batch_size}: "
            f"forward {t['fwd']:.2f} ms (CPU {t['fwd_cpu']:.2f} ms), forward+backward "
            f"{t['fb']:.2f} ms (CPU {t['fb_cpu']:.2f} ms) per batch"
        )
        if wall is not None:
            plain = statistics.median(wall["plain"])
            step = statistics.median(wall[walk])
            r.update(
                {
                    "ratio": step / plain,
                    "ratio_min": min(wall[walk]) / min(wall["plain"]),
                    "ratio_cpu": res[f"{walk}_step_cpu_s"] / res["plain_step_cpu_s"],
                    # Plain step + the layer's own forward/backward cost.
                    "ratio_layer_estimate": 1 + t["fb"] / 1000 / plain,
                }
            )
            line += (
                f"; step plain {plain:.3f} s, SP {step:.3f} s, ratio {r['ratio']:.3f} "
                f"(min-based {r['ratio_min']:.3f}, CPU-time {r['ratio_cpu']:.3f}, "
                f"plain + layer estimate {r['ratio_layer_estimate']:.4f})"
            )
        print(line, flush=True)


def bench_backbone(backbone, args):
    rng = np.random.default_rng(0)
    walks = [w.strip() for w in args.walks.split(",") if w.strip()]
    if args.layer_only:
        res = {"feature_map": [args.image_size // 16] * 2 + [1024]}
        layer_only(res, walks, args, rng)
        return res
    x = rng.uniform(0, 255, (args.batch_size, args.image_size, args.image_size, 3))
    x = x.astype("float32")
    y = rng.integers(0, args.num_classes, args.batch_size)
    models = {"plain": build(backbone, args.image_size, args.num_classes, None, args.jit_compile)}
    for walk in walks:
        models[walk] = build(backbone, args.image_size, args.num_classes, walk, args.jit_compile)
    for _ in range(args.warmup):
        for model in models.values():
            model.train_on_batch(x, y)
    wall = {k: [] for k in models}
    cpu = {k: [] for k in models}
    for _ in range(args.steps):
        for name, model in models.items():
            w, c = timed(lambda: model.train_on_batch(x, y))
            wall[name].append(w)
            cpu[name].append(c)
    res = {"feature_map": [args.image_size // 16] * 2 + [1024]}
    for name in models:
        res[f"{name}_step_s"] = statistics.median(wall[name])
        res[f"{name}_step_all_s"] = [round(t, 4) for t in wall[name]]
        res[f"{name}_step_cpu_s"] = statistics.median(cpu[name])
    layer_only(res, walks, args, rng, wall=wall)
    return res


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backbones", default="vgg16")
    parser.add_argument("--image_size", type=int, default=224)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--num_classes", type=int, default=200)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--walks", default="fixed,squaring,tolerance")
    parser.add_argument(
        "--layer_only",
        action="store_true",
        help="time only the SoftProposal layer (no backbone training steps)",
    )
    parser.add_argument("--layer_reps", type=int, default=30)
    parser.add_argument(
        "--precision",
        default="float32",
        choices=["float32", "mixed_float16", "mixed_bfloat16"],
    )
    parser.add_argument(
        "--jit_compile",
        default="auto",
        choices=["auto", "true", "false"],
        help="model.compile's jit_compile (auto: Keras' choice, XLA on JAX)",
    )
    args = parser.parse_args()
    args.jit_compile = {"auto": "auto", "true": True, "false": False}[args.jit_compile]
    keras.mixed_precision.set_global_policy(args.precision)
    results = {
        "bench": "soft_proposal_overhead",
        "backend": BACKEND,
        "device": device_name(),
        "precision": args.precision,
        "image_size": args.image_size,
        "batch_size": args.batch_size,
        "steps": args.steps,
        "jit_compile": args.jit_compile,
    }
    worst = {}
    for name in args.backbones.split(","):
        res = bench_backbone(name.strip(), args)
        results[name.strip()] = res
        for walk in args.walks.split(","):
            if "ratio" in res[walk]:
                worst[walk] = max(worst.get(walk, 0.0), res[walk]["ratio"])
    if worst:
        results["ratio"] = worst  # per walk, the worse backbone
    print(json.dumps(results))


if __name__ == "__main__":
    main()
