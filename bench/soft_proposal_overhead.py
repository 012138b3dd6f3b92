"""Training-step overhead of SoftProposal (SPN Sec. 3, "nearly cost-free").

Builds, in one process, the released SPN head on a keras.applications backbone
(weights=None, include_top=False): 3x3 conv to 1024 + ReLU, [SoftProposal],
spatial sum pooling, dropout 0.5, dense to C; the "plain" model is the same
without SoftProposal. Times one SGD training step of each (after warm-up,
alternating plain / SP steps so background load hits both alike) and reports
the medians and their ratio. Also times the SoftProposal layer alone on the
head's [B, h, w, 1024] features (the paper quotes 0.9 ms per image on a K80).

Usage:
  python bench/soft_proposal_overhead.py --backbones=vgg16,resnet50 \
      --image_size=224 --batch_size=8 --steps=5 --warmup=2

The last printed line is one JSON object.
"""

import argparse
import json
import os
import statistics
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from wsol_keras.layers.soft_proposal import (  # noqa: E402
    GlobalSumPooling2D,
    SoftProposal,
)

# Feature layer as in the released SPN (VGG16 without pool5: 14x14 at 224).
APPS = {
    "vgg16": (keras.applications.VGG16, "block5_conv3"),
    "resnet50": (keras.applications.ResNet50, "conv5_block3_out"),
}


def build(backbone, image_size, num_classes, use_sp, jit_compile=False):
    ctor, feature_layer = APPS[backbone]
    base = ctor(
        include_top=False, weights=None, input_shape=(image_size, image_size, 3)
    )
    features = base.get_layer(feature_layer).output
    x = keras.layers.Conv2D(1024, 3, padding="same", activation="relu")(features)
    if use_sp:
        x = SoftProposal()(x)
    x = GlobalSumPooling2D()(x)
    x = keras.layers.Dropout(0.5)(x)
    out = keras.layers.Dense(num_classes)(x)
    model = keras.Model(base.input, out)
    model.compile(
        optimizer=keras.optimizers.SGD(0.001, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=jit_compile,
    )
    return model


def time_call(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def cpu_time_call(fn):
    """(wall seconds, process CPU seconds over all threads) of one call.

    On a shared machine the wall time of a step swings with other processes'
    load; the CPU time this process spends on the step is much steadier.
    """
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def bench_backbone(backbone, args):
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (args.batch_size, args.image_size, args.image_size, 3))
    x = x.astype("float32")
    y = rng.integers(0, args.num_classes, args.batch_size)
    plain = build(backbone, args.image_size, args.num_classes, False, args.jit_compile)
    sp = build(backbone, args.image_size, args.num_classes, True, args.jit_compile)
    for _ in range(args.warmup):
        plain.train_on_batch(x, y)
        sp.train_on_batch(x, y)
    t_plain, t_sp, c_plain, c_sp = [], [], [], []
    for _ in range(args.steps):
        wall, cpu = cpu_time_call(lambda: plain.train_on_batch(x, y))
        t_plain.append(wall)
        c_plain.append(cpu)
        wall, cpu = cpu_time_call(lambda: sp.train_on_batch(x, y))
        t_sp.append(wall)
        c_sp.append(cpu)
    # The layer alone on the head features' shape, forward and forward +
    # backward (what it adds to a training step), timed many times: short
    # calls are far less sensitive to background load than whole steps.
    feat_shape = sp.layers[-4].input.shape  # input of SoftProposal
    feats = tf.constant(
        rng.uniform(0, 1, (args.batch_size, *feat_shape[1:])).astype("float32")
    )
    grad_w = tf.constant(rng.uniform(0, 1, feats.shape).astype("float32"))
    layer = SoftProposal()
    forward = tf.function(layer)

    @tf.function
    def forward_backward(u):
        with tf.GradientTape() as tape:
            tape.watch(u)
            loss = tf.reduce_sum(layer(u) * grad_w)
        return tape.gradient(loss, u)

    for _ in range(3):
        forward(feats)
        forward_backward(feats)
    reps = max(10, 4 * args.steps)
    t_fwd = [time_call(lambda: forward(feats).numpy()) for _ in range(reps)]
    t_fb = [time_call(lambda: forward_backward(feats).numpy()) for _ in range(reps)]
    res = {
        "plain_step_s": statistics.median(t_plain),
        "sp_step_s": statistics.median(t_sp),
        "plain_step_all_s": t_plain,
        "sp_step_all_s": t_sp,
        "sp_layer_forward_ms_per_image": 1000
        * statistics.median(t_fwd)
        / args.batch_size,
        "sp_layer_train_ms_per_batch": 1000 * statistics.median(t_fb),
        "feature_map": list(feat_shape[1:]),
    }
    res["ratio"] = res["sp_step_s"] / res["plain_step_s"]
    # Best-of-N is less sensitive to other processes than the median.
    res["ratio_min"] = min(t_sp) / min(t_plain)
    res["plain_step_cpu_s"] = statistics.median(c_plain)
    res["sp_step_cpu_s"] = statistics.median(c_sp)
    res["ratio_cpu"] = res["sp_step_cpu_s"] / res["plain_step_cpu_s"]
    # Plain step + the layer's own forward/backward cost.
    res["ratio_layer_estimate"] = (
        res["plain_step_s"] + res["sp_layer_train_ms_per_batch"] / 1000
    ) / res["plain_step_s"]
    print(
        f"{backbone}: plain {res['plain_step_s']:.3f} s/step, SP "
        f"{res['sp_step_s']:.3f} s/step, ratio {res['ratio']:.3f}, CPU-time "
        f"ratio {res['ratio_cpu']:.3f} "
        f"(steps plain {[round(t, 3) for t in t_plain]}, SP "
        f"{[round(t, 3) for t in t_sp]}); SP layer alone on "
        f"{res['feature_map']} maps: forward "
        f"{res['sp_layer_forward_ms_per_image']:.2f} ms/image, forward+backward "
        f"{res['sp_layer_train_ms_per_batch']:.1f} ms/batch -> estimated ratio "
        f"{res['ratio_layer_estimate']:.4f}",
        flush=True,
    )
    return res


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backbones", default="vgg16,resnet50")
    parser.add_argument("--image_size", type=int, default=224)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--num_classes", type=int, default=200)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--jit_compile", action="store_true")
    args = parser.parse_args()
    results = {
        "bench": "soft_proposal_overhead",
        "image_size": args.image_size,
        "batch_size": args.batch_size,
        "steps": args.steps,
        "jit_compile": args.jit_compile,
        "device": "GPU" if tf.config.list_physical_devices("GPU") else "CPU",
    }
    ratios = []
    for name in args.backbones.split(","):
        res = bench_backbone(name.strip(), args)
        results[name.strip()] = res
        ratios.append(res["ratio"])
    results["ratio"] = max(ratios)  # the worse backbone
    print(json.dumps(results))


if __name__ == "__main__":
    main()
