"""Divergence guard: a run whose loss or weights stop being finite is stopped.

Without it a diverged run (a learning rate far too high, a float16 overflow)
trains on NaN weights, writes them as the final model and reports metrics
computed from them with exit status 0. :class:`DivergenceGuard` checks the
training loss after every step and every weight at the end of every epoch,
*before* the epoch's checkpoint is written (put it ahead of
`workdir.AtomicCheckpoint` in the callback list), so the last committed
checkpoint is always a finite one and a rerun (with a lower learning rate,
``--allow_config_change``) resumes from it. :func:`check_finite_weights` is the
same weight check for the writes after ``fit`` (precise BN, final weights).
"""

import math

import keras
import numpy as np


class TrainingDiverged(ValueError):
    """Non-finite loss or weights (a ValueError: the CLI prints it on one line)."""


def _first_non_finite(model):
    """(variable path, count of non-finite entries) of the first bad weight, or None."""
    for v in model.weights:
        value = np.asarray(keras.ops.convert_to_numpy(v))
        if not np.issubdtype(value.dtype, np.floating):
            continue
        bad = int(np.size(value) - np.count_nonzero(np.isfinite(value)))
        if bad:
            return getattr(v, "path", v.name), bad, value.size
    return None


def check_finite_weights(model, where):
    """Raises TrainingDiverged naming the first weight with a NaN / inf entry.

    Args:
        model: a built Keras model.
        where: what the run was doing, for the message ("after precise BN").
    """
    found = _first_non_finite(model)
    if found:
        path, bad, size = found
        raise TrainingDiverged(
            f"training diverged: weight {path!r} has {bad} non-finite value(s) "
            f"of {size} {where}; nothing was written from these weights"
        )


class DivergenceGuard(keras.callbacks.Callback):
    """Stops `fit` with TrainingDiverged on a non-finite loss or weight.

    The loss (every logged ``*loss`` value) is checked after each step, the
    weights at each epoch's end; the message names the epoch and step
    (1-based) and the last good checkpoint to resume from.

    Args:
        last_good_epoch: epochs already committed in the workdir's
            checkpoints when `fit` starts (the resume point).
    """

    def __init__(self, last_good_epoch=0):
        super().__init__()
        self.last_good = last_good_epoch
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def _fail(self, what, step):
        where = f"epoch {self.epoch + 1}" + (f", step {step}" if step else " (end)")
        resume = (
            f"the checkpoint of epoch {self.last_good} is kept: rerun with a lower "
            "learning rate and --allow_config_change to resume from it"
            if self.last_good
            else "no checkpoint was written: lower the learning rate and rerun"
        )
        raise TrainingDiverged(
            f"training diverged at {where}: {what}; stopped before writing "
            f"checkpoints, final weights or a report from it ({resume})"
        )

    def on_train_batch_end(self, batch, logs=None):
        for name, value in (logs or {}).items():
            if not name.endswith("loss"):
                continue
            try:
                v = float(np.asarray(keras.ops.convert_to_numpy(value)))
            except (TypeError, ValueError):
                continue
            if not math.isfinite(v):
                self._fail(f"{name} = {v}", batch + 1)

    def on_epoch_end(self, epoch, logs=None):
        found = _first_non_finite(self.model)
        if found:
            path, bad, size = found
            self._fail(f"weight {path!r} has {bad} non-finite value(s) of {size}", None)
        # The checkpoint after this callback commits this epoch.
        self.last_good = epoch + 1
