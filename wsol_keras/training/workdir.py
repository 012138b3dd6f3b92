"""The workdir: effective config, atomic checkpoints, and reloading a model.

A workdir is self-describing: `config.json` holds the experiment config and
the data's class names, so `wsol-eval` and `wsol-export` rebuild the model
with `models.registry.build_model` and load `model.weights.h5` (the Model Garden way;
no pickled Python objects).  Every file is written to a temporary name in
the same directory and renamed, so an interrupted run never leaves a
half-written checkpoint or config behind.
"""

import csv
import datetime
import json
import os
import uuid

from absl import logging
import keras

from wsol_keras.training import temp_files
from wsol_keras.models.registry import build_model
from wsol_keras.models.stored import (  # noqa: F401  (the workdir's file names)
    CONFIG_FILE,
    WEIGHTS_FILE,
    final_weights_path,
    read_config,
)

CHECKPOINT_DIR = "checkpoints"


def atomic_write(path, write_fn, suffix=""):
    """Calls write_fn(tmp) on a fresh temporary name beside `path`, then renames it."""
    # A fresh name that `write_fn` creates itself, so the file gets the user's
    # umask like any other (tempfile.mkstemp would make it 0600).
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    # Our own temporary name (pid, host): `temp_files.remove_orphans` can tell
    # a killed run's leftover from a write in progress.
    tmp = os.path.join(
        directory,
        f"{temp_files.temp_prefix()}{uuid.uuid4().hex}{suffix or os.path.basename(path)}",
    )
    try:
        write_fn(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_json_atomic(path, obj):
    def write(tmp):
        with open(tmp, "x") as f:
            json.dump(obj, f, indent=2, sort_keys=True)

    atomic_write(path, write, suffix=".json")


def save_weights_atomic(model, path):
    # Keras requires the .weights.h5 suffix on the temporary name too.
    atomic_write(path, model.save_weights, suffix=".weights.h5")


# Fields a rerun may change without refusing: they steer only the evaluation
# that follows training, never the weights (the rewritten config.json records
# the new values, which the new report used).
RERUN_MAY_CHANGE = ("config.eval.", "config.data.allow_data_change")
FINGERPRINT = "data_info.data_fingerprint"


def write_config(workdir, config, data_info, keep_previous=False):
    """Writes `workdir/config.json`.

    Args:
        keep_previous: rename an existing config.json to
            `config.previous-<UTC time>.json` first instead of replacing it.
    """
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, CONFIG_FILE)
    if keep_previous and os.path.exists(path):
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S")
        os.replace(path, os.path.join(workdir, f"config.previous-{stamp}.json"))
    write_json_atomic(path, {"config": config.to_dict(), "data_info": data_info})


def _flatten(obj, prefix):
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: obj}


def config_changes(workdir, config, data_info):
    """[(field, old, new)] where the requested run differs from config.json.

    Fields are dotted paths ("config.train.learning_rate",
    "data_info.class_names"); a field only one side has shows "<absent>".
    Empty when the workdir has no config.json.
    """
    path = os.path.join(workdir, CONFIG_FILE)
    if not os.path.exists(path):
        return []
    read_config(workdir)  # clear errors for a broken file
    with open(path) as f:
        old = _flatten(json.load(f), "")
    # The JSON round trip gives both sides the same types (tuples -> lists).
    new = _flatten(
        json.loads(json.dumps({"config": config.to_dict(), "data_info": data_info})),
        "",
    )
    missing = "<absent>"
    return [
        (k, old.get(k, missing), new.get(k, missing))
        for k in sorted(set(old) | set(new))
        if old.get(k, missing) != new.get(k, missing)
    ]


def check_rerun_config(workdir, config, data_info, allow_change=False):
    """Refuses to continue in a workdir written by a different config.

    Fields under `RERUN_MAY_CHANGE` may differ. Reads only; call it before
    writing anything into the workdir.

    Returns:
        the differing fields [(field, old, new)], all of them.

    Raises:
        ValueError naming every differing field (old -> new), unless
        `allow_change`.
    """
    changes = config_changes(workdir, config, data_info)
    data = [c for c in changes if c[0] == FINGERPRINT and c[1] != "<absent>"]
    if data and not config.data.get("allow_data_change", False):
        raise ValueError(
            f"the data set has changed since {workdir!r} was trained on it "
            f"(fingerprint {data[0][1]} -> {data[0][2]}: images added, removed, "
            "relabelled or re-boxed); use another --workdir, or set "
            "--config.data.allow_data_change=True to resume on the new data"
        )
    blocking = [
        c for c in changes
        if not c[0].startswith(RERUN_MAY_CHANGE) and c[0] != FINGERPRINT
    ]
    if blocking and not allow_change:
        lines = "\n".join(f"  {k}: {old!r} -> {new!r}" for k, old, new in blocking)
        raise ValueError(
            f"{os.path.join(workdir, CONFIG_FILE)} was written by a different "
            f"config; refusing to continue in {workdir!r}. Differing fields "
            f"(workdir -> requested):\n{lines}\nUse another --workdir, or pass "
            "--allow_config_change to continue this workdir's checkpoint under "
            "the requested config (the old config.json is kept as "
            "config.previous-<time>.json)."
        )
    return changes


class AtomicCheckpoint(keras.callbacks.Callback):
    """Saves the whole training state after every epoch, atomically.

    `model.save_weights` stores the model's variables and the optimizer's
    (iteration counter, which drives the learning-rate schedule, and moments);
    `last.json` adds the layers' random-number states (dropout, DANet's
    discrepancy noise), which `save_weights` leaves out.
    Each epoch goes to its own `epoch-N.weights.h5`; `last.json` is then
    replaced to point at it (the commit point), and older epochs are removed,
    so a kill at any moment leaves one complete, consistent checkpoint.
    (`keras.callbacks.BackupAndRestore` writes its weights and epoch files in
    place, one after the other, and restores only inside `fit`, too late to
    position the input pipeline; hence this callback.)

    Args:
        workdir: the run's workdir.
        extra_state: optional object whose ``checkpoint_state()`` returns
            (fields added to `last.json`, names of other files in checkpoints/
            to keep), e.g. `val_localization.ValLocalization`'s scores and
            best weights: committed with the epoch, so a resume sees them
            exactly as they were after the epoch it resumes from.
    """

    def __init__(self, workdir, extra_state=None):
        super().__init__()
        self.directory = os.path.join(workdir, CHECKPOINT_DIR)
        self.extra_state = extra_state

    def on_epoch_end(self, epoch, logs=None):
        name = f"epoch-{epoch + 1}.weights.h5"
        extra, keep = (
            self.extra_state.checkpoint_state() if self.extra_state else ({}, ())
        )
        save_weights_atomic(self.model, os.path.join(self.directory, name))
        write_json_atomic(
            os.path.join(self.directory, "last.json"),
            {
                **extra,
                "epochs_done": epoch + 1,
                "weights": name,
                # In model order (paths get per-process suffixes).
                "random_states": [
                    keras.ops.convert_to_numpy(v).tolist()
                    for v in _random_states(self.model)
                ],
            },
        )
        keep = {name, *keep}
        for old in os.listdir(self.directory):
            if old.endswith(".weights.h5") and old not in keep and not old.startswith("."):
                os.remove(os.path.join(self.directory, old))


def load_weights_checked(model, path, what):
    """`model.load_weights(path)`; a truncated or damaged file -> ValueError
    naming it and what to do (h5py's "truncated file: eof = ..." names neither).

    Args:
        what: how to recover, e.g. "remove checkpoints/ to restart the run".
    """
    try:
        model.load_weights(path)
    except (OSError, ValueError, KeyError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise ValueError(
            f"{path}: cannot load these weights into the model ({first}): the "
            f"file is truncated, damaged or from another model; {what}"
        ) from e


def _random_states(model):
    """The model's SeedGenerator states (`save_weights` leaves them out)."""
    weights = {id(w) for w in model.weights}
    return [v for v in model.variables if id(v) not in weights]


def checkpoint_record(workdir):
    """The committed `checkpoints/last.json` as a dict; {} when there is none."""
    meta = os.path.join(workdir, CHECKPOINT_DIR, "last.json")
    if not os.path.exists(meta):
        return {}
    with open(meta) as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{meta}: not valid JSON ({e})") from e


def restore_checkpoint(workdir, model):
    """Loads the last epoch checkpoint if one exists; returns epochs done.

    Restores the optimizer state too: the optimizer's variables are created
    first (`optimizer.build`), else Keras skips them and the iteration
    counter, moments and schedule would restart from zero.
    """
    meta = os.path.join(workdir, CHECKPOINT_DIR, "last.json")
    record = checkpoint_record(workdir)
    if not record:
        return 0
    epochs_done = int(record["epochs_done"])
    weights = os.path.join(
        workdir, CHECKPOINT_DIR, record.get("weights", "last.weights.h5")
    )
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and not optimizer.built:
        optimizer.build(model.trainable_variables)
    load_weights_checked(
        model, weights, f"remove {os.path.join(workdir, CHECKPOINT_DIR)} to restart "
        "the run from scratch"
    )
    saved = record.get("random_states", [])
    states = _random_states(model)
    if saved and len(saved) != len(states):
        raise ValueError(
            f"{meta}: {len(saved)} random states saved, the model has {len(states)}"
        )
    for v, value in zip(states, saved):
        v.assign(value)
    logging.info("resumed from %s after %d epoch(s)", weights, epochs_done)
    return epochs_done


class LearningRateLogger(keras.callbacks.Callback):
    """Adds "learning_rate" (the rate of the epoch's last step) to the epoch logs.

    Put it before the CSVLogger / TensorBoard callbacks that should record it.
    """

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        optimizer = self.model.optimizer
        schedule = getattr(optimizer, "_learning_rate", None)
        if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
            step = max(0, int(keras.ops.convert_to_numpy(optimizer.iterations)) - 1)
            rate = schedule(step)
        else:
            rate = optimizer.learning_rate
        logs["learning_rate"] = float(keras.ops.convert_to_numpy(rate))


def truncate_history(path, epochs_done):
    """Keeps the rows of epochs < `epochs_done` in the CSV history at `path`.

    A run killed after writing an epoch's row but before its checkpoint
    redoes that epoch on resume; this drops the stale row first, so the
    appended history has each epoch once.
    """
    if not os.path.exists(path):
        return
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return
    header, body = rows[0], rows[1:]
    col = header.index("epoch") if "epoch" in header else 0
    kept = []
    for lineno, row in enumerate(body, 2):
        if not row:
            continue
        try:
            epoch = int(row[col])
        except (ValueError, IndexError):
            raise ValueError(
                f"{path}:{lineno}: not a history row (epoch column {header[col]!r}: "
                f"{row[col] if col < len(row) else '<missing>'!r}); fix or remove the "
                "line (the checkpoint, not this file, decides where training resumes)"
            ) from None
        if epoch < epochs_done:
            kept.append(row)

    def write(tmp):
        with open(tmp, "x", newline="") as f:
            csv.writer(f).writerows([header, *kept])

    atomic_write(path, write, suffix=".csv")


def load_model(workdir, config_overrides=None):
    """Rebuilds the workdir's model and loads its final weights.

    Returns:
        (model, config, data_info).
    """
    config, data_info = read_config(workdir)
    if config_overrides:
        config.update(config_overrides)
    weights = final_weights_path(workdir)
    if not os.path.exists(weights):
        raise FileNotFoundError(
            f"{weights} not found: training in {workdir!r} " "did not finish"
        )
    model = build_model(config, data_info)  # no optimizer: inference only
    load_weights_checked(
        model, weights, "rerun wsol-train in this workdir to write it again"
    )
    return model, config, data_info
