"""Population statistics for BatchNorm after training ("precise BN").

The moving averages a BatchNormalization layer keeps during training mix
statistics of many past weights and start from mean 0 / variance 1; on short
runs they can be far from the statistics of the final network (Wu & Johnson,
"Rethinking 'Batch' in BatchNorm", 2021, Sec. 3: "precise BN").  As pycls and
detectron2 do, after training we run N training batches through the model in
training mode with the weights unchanged and replace every moving mean and
variance by the exact statistics of the BN inputs over those batches.

The variance stored is the population variance of the inputs over all N
batches (law of total variance: the size-weighted mean of the per-batch
variances plus the variance of the per-batch means), i.e. the mean squared
deviation from the stored mean, which is what inference-mode BN divides by.
"""

import math

from absl import logging
import keras
import numpy as np
import tensorflow as tf


def batch_norm_layers(model):
    """Every `keras.layers.BatchNormalization` inside `model` (nested included)."""
    return [
        layer
        for layer in model._flatten_layers(include_self=False)
        if isinstance(layer, keras.layers.BatchNormalization)
    ]


def recompute_batch_norm_statistics(model, dataset, num_batches):
    """Replaces BN moving statistics by the population statistics of N batches.

    Args:
        model: a Keras model; it is called as `model(x, training=True)`.
        dataset: yields `x` or `(x, y, ...)` batches (the training pipeline);
            at least `num_batches` of them.
        num_batches: batches to average over; 0 disables the pass.

    Returns:
        A summary dict: "layers", "batches", "examples" and the median over
        channels, maximum over layers, of |new mean - old mean| / new std
        ("max_mean_shift") and of |log(new variance / old variance)|
        ("max_log_var_ratio"); `{"layers": 0, ...}` when nothing was done.
    """
    num_batches = int(num_batches)
    if num_batches < 0:
        raise ValueError(f"precise BN: num_batches must be >= 0, got {num_batches}")
    bns = batch_norm_layers(model)
    summary = {
        "layers": len(bns),
        "batches": 0,
        "examples": 0,
        "max_mean_shift": 0.0,
        "max_log_var_ratio": 0.0,
    }
    if not bns or num_batches == 0:
        return summary
    old = [(b.moving_mean.numpy(), b.moving_variance.numpy()) for b in bns]
    momenta = [b.momentum for b in bns]
    # Momentum 0 makes each training-mode call store that batch's exact mean and
    # (biased) variance in the moving variables, where we read them.
    for b in bns:
        b.momentum = 0.0
    try:
        forward = tf.function(lambda x: model(x, training=True))
        counts = []
        sums = [[0.0, 0.0, 0.0] for _ in bns]  # sum n*mean, n*var, n*mean^2
        for element in dataset.take(num_batches):
            x = element[0] if isinstance(element, tuple) else element
            forward(x)
            rows = _leading_dim(x)
            counts.append(rows)
            for s, b in zip(sums, bns):
                mean = b.moving_mean.numpy().astype(np.float64)
                var = b.moving_variance.numpy().astype(np.float64)
                s[0] = s[0] + rows * mean
                s[1] = s[1] + rows * var
                s[2] = s[2] + rows * mean**2
    finally:
        for b, m in zip(bns, momenta):
            b.momentum = m
    if len(counts) < num_batches:
        for b, (mean, var) in zip(bns, old):
            b.moving_mean.assign(mean)
            b.moving_variance.assign(var)
        raise ValueError(
            f"precise BN: the dataset gave {len(counts)} batches, "
            f"{num_batches} requested (config.train.precise_bn_batches)"
        )
    # Every element of a batch contributes the same number of positions to a
    # BN layer, so weighting by batch rows weights by BN input count.
    total = float(sum(counts))
    shifts, ratios = [], []
    for b, (m0, v0), (sm, sv, sm2) in zip(bns, old, sums):
        mean = sm / total
        var = sv / total + np.maximum(sm2 / total - mean**2, 0.0)
        b.moving_mean.assign(mean.astype(np.float32))
        b.moving_variance.assign(var.astype(np.float32))
        std = np.sqrt(var + b.epsilon)
        shifts.append(float(np.median(np.abs(mean - m0) / std)))
        ratios.append(
            float(np.median(np.abs(np.log((var + b.epsilon) / (v0 + b.epsilon)))))
        )
    summary.update(
        batches=len(counts),
        examples=int(total),
        max_mean_shift=max(shifts),
        max_log_var_ratio=max(ratios),
    )
    logging.info(
        "precise BN: re-estimated %d BatchNorm layers on %d batches (%d images); "
        "largest per-layer median |mean shift| %.3g std, |log var ratio| %.3g "
        "(variance x%.3g)",
        summary["layers"],
        summary["batches"],
        summary["examples"],
        summary["max_mean_shift"],
        summary["max_log_var_ratio"],
        math.exp(summary["max_log_var_ratio"]),
    )
    return summary


def _leading_dim(x):
    first = tf.nest.flatten(x)[0]
    return int(first.shape[0])
