r"""Trains a WSOL model with `model.fit`, then evaluates and writes the report.

    wsol-train --workdir=runs/demo                      # synthetic CAM default
    wsol-train --config=configs/cub_vgg16_cam.py --workdir=runs/cub \
            --config.data.root=/data/CUB_200_2011 --strategy=mirrored

The workdir receives config.json (the effective config and the data's class
names), checkpoints/ (weights and optimizer state after every epoch, written
atomically; a rerun resumes exactly from the last one), history.csv (per-epoch
metrics, learning rate, val localization score), logs/ (TensorBoard),
model.weights.h5 with selected_checkpoint.json, and the evaluation report
(metrics.json, heatmaps.png, box_accuracy.png).

A rerun whose config differs from the workdir's config.json is refused before
anything is written (fields under `eval.` may change; `--allow_config_change`
overrides).

Checkpoint selection (`wsol_keras.training.checkpoint_selection`, as wsolevaluation's
main.py): val MaxBoxAccV2 (PxAP on mask-only data) before training and every
`train.val_localization_every` epochs, with the BN moving statistics of the
moment; `train.checkpoint_selection="best"` evaluates the first epoch with the
highest score instead of the last (the default). Precise BN runs on the
selected weights; the report names them (checkpoint, epoch, val score).
"""

import contextlib
import os
import shutil
import tempfile
import time

from absl import flags
from absl import logging
import keras
import numpy as np
import tensorflow as tf

from wsol_keras import cli
from wsol_keras import cli_flags
from wsol_keras.training import backbone_export
from wsol_keras.training import config_checks
from wsol_keras.training import divergence
from wsol_keras import configs
from wsol_keras import data as data_lib
from wsol_keras.evaluation import evaluator
from wsol_keras.evaluation import records as eval_records
from wsol_keras.evaluation import multilabel
from wsol_keras.training import precise_bn
from wsol_keras.training import precision as precision_lib
from wsol_keras.training import temp_files
from wsol_keras.training import optimizers
from wsol_keras.evaluation import report
from wsol_keras.models import phases as method_phases
from wsol_keras.training.strategies import is_chief, make_strategy
from wsol_keras.training import checkpoint_selection
from wsol_keras.training import workdir as workdir_lib
from wsol_keras.training import workdir_lock
from wsol_keras.models.registry import build_model


def default_config_path():
    """The package's configs/synthetic_dgl.py (checkout or installed alike)."""
    return os.path.join(os.path.dirname(configs.__file__), "synthetic_dgl.py")


def data_info_of(source, config):
    return {
        "num_classes": source.num_classes,
        "class_names": list(source.class_names),
        "hierarchy_sizes": [int(s) for s in source.hierarchy_sizes],
        # [C, L] ancestors of each leaf class, nearest parent first (DANet).
        "ancestors": np.asarray(source.hierarchy, np.int64).tolist(),
        "image_size": int(config.data.image_size),
        # VOC / COCO: multi-hot labels; single-label methods refuse it.
        "multi_label": bool(getattr(source, "multi_label", False)),
        # Compared on resume (workdir.check_rerun_config); None: synthetic.
        "data_fingerprint": source.fingerprint(),
    }


def make_train_dataset(
    source, config, global_batch_size, skip_batches=0, batch_transform=None
):
    """x = {"image", "label", "hierarchy"}, y = label, batched and augmented.

    An endless stream whose order is a function of `config.seed` alone (up to
    the parallel decoding order of file sources, see `data.train_loader`);
    `skip_batches` drops its first batches before they are decoded or
    augmented, so a resumed run continues with the batches the uninterrupted
    run would have seen.  `batch_transform` (the model's
    `train_batch_transform()`) maps (batch_index, x, y) -> (x, y) over the
    global batches, batch_index counted from the run's first batch.
    """
    ds = source.train_dataset(
        "train",
        seed=config.seed,
        scale=config.train.crop_scale,
        flip=config.train.flip,
        skip=skip_batches * global_batch_size,
    )
    ds = ds.batch(global_batch_size, drop_remainder=True)
    ds = ds.map(_to_xy, num_parallel_calls=tf.data.AUTOTUNE)
    if batch_transform is not None:
        ds = ds.enumerate(start=skip_batches).map(
            lambda i, xy: batch_transform(i, *xy),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    # Across workers, each global batch is split by position (worker i takes
    # its slice of every batch), so a cluster trains on the batches a single
    # machine would.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA
    )
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)


def make_eval_dataset(source, split, batch_size):
    ds = source.dataset(split).batch(batch_size)
    return ds.map(_to_xy).prefetch(tf.data.AUTOTUNE)


def _to_xy(element):
    x = {
        "image": tf.cast(element["image"], tf.float32),
        "label": element["label"],
        "hierarchy": element["hierarchy"],
    }
    return x, element["label"]


make_optimizer = optimizers.make_optimizer  # (its old home)


def build_compiled_model(config, data_info, steps_per_epoch=1):
    """`build_model`, then compiled with the configured optimizer (built)."""
    model = build_model(config, data_info)
    model.compile(
        optimizer=make_optimizer(config, steps_per_epoch, model),
        jit_compile=precision_lib.resolve_jit_compile(config.train.jit_compile),
    )
    # Optimizer variables now, not in `fit`: a checkpoint can then restore
    # them, and `fit` has nothing left to build (see WSOLModel).
    model.optimizer.build(model.trainable_variables)
    return model


def train(config, workdir, strategy=None, allow_config_change=False, evaluate=False):
    """Trains `config` into `workdir`; returns (model, source, data_info).

    A workdir with a checkpoint resumes exactly where it stopped (weights,
    optimizer state and schedule, epoch count, history, data order). Nothing
    is written into `workdir` before every check passed; a workdir written by
    a different config is refused unless `allow_config_change`
    (`workdir.check_rerun_config`).

    Under MultiWorkerMirroredStrategy every worker runs the same steps (saving
    reads variables collectively), but only the chief (`is_chief`) writes into
    `workdir`; the others write into a temporary directory, removed at the
    end. All of them resume from `workdir` (shared storage across machines).

    `evaluate`: the test split is read after training (checked first too).
    """
    strategy = strategy or tf.distribute.get_strategy()
    with _workdir_lock(workdir, strategy):
        return _train(config, workdir, strategy, allow_config_change, evaluate)


def _workdir_lock(workdir, strategy):
    """The workdir's lock (`workdir_lock`) on the chief, which alone writes it."""
    if is_chief(strategy):
        return workdir_lock.directory_lock(workdir, "wsol-train")
    return contextlib.nullcontext()


def _train(config, workdir, strategy, allow_config_change, evaluate):
    started = time.time()
    config_checks.check_config(config)  # before anything is written
    pre_fit = _checked_pre_fit_phases(config)
    keras.utils.set_random_seed(config.seed)
    precision_lib.apply_precision(config)
    source = data_lib.get_source(config.data)
    data_info = data_info_of(source, config)

    global_batch = config.train.batch_size
    if global_batch % strategy.num_replicas_in_sync:
        raise ValueError(
            f"config.train.batch_size={global_batch} is not divisible "
            f"by the {strategy.num_replicas_in_sync} replicas"
        )
    steps = source.num_examples("train") // global_batch
    if steps == 0:
        raise ValueError(
            f"config.train.batch_size={global_batch} exceeds the "
            f"{source.num_examples('train')} training images"
        )
    if config.train.steps_per_epoch:
        steps = min(steps, config.train.steps_per_epoch)
    checkpoint_selection.check_selection(config, source)
    changes = workdir_lib.check_rerun_config(
        workdir, config, data_info, allow_change=allow_config_change
    )
    with strategy.scope():
        try:
            model = build_compiled_model(config, data_info, steps)
        except (ValueError, TypeError) as e:
            raise config_checks.model_build_error(config, e) from e
        method_phases.prepare(model, config, data_info)
        initial_epoch = workdir_lib.restore_checkpoint(workdir, model)
    splits = ("train", "val") + (("test",) if evaluate else ())
    config_checks.check_run(config, source, model, splits)  # reads only
    if _finished(workdir, config, initial_epoch) and not changes:
        # A rerun of a finished run: its final weights (selected checkpoint,
        # precise BN) are the result; nothing is trained or written.
        logging.info("%s: training finished before; using its %s", workdir,
                     os.path.basename(workdir_lib.final_weights_path(workdir)))
        model.load_weights(workdir_lib.final_weights_path(workdir))
        return model, source, data_info
    record = workdir_lib.checkpoint_record(workdir)
    scores = checkpoint_selection.SelectionState.from_checkpoint(record)
    chief = is_chief(strategy)
    out = workdir if chief else tempfile.mkdtemp(prefix="wsol-worker-")
    try:
        # Every check passed: from here on the workdir is written, starting
        # with the leftovers of killed runs (our own temporary names only).
        if chief:
            for d in (out, os.path.join(out, workdir_lib.CHECKPOINT_DIR)):
                temp_files.remove_orphans(d, folders=False)
        workdir_lib.write_config(out, config, data_info, keep_previous=bool(changes))
        if initial_epoch == 0:  # the method's own runs first
            _run_pre_fit_phases(model, pre_fit, workdir, strategy, allow_config_change)
        _fit(model, source, config, out, strategy, steps, initial_epoch, scores)
        with strategy.scope():  # "best": the best epoch's weights
            selection = checkpoint_selection.select_checkpoint(model, config, out, scores)
        # Population statistics for inference (precise BN), before the final
        # weights are written: every later evaluation uses them.
        precise_bn.recompute_batch_norm_statistics(
            model,
            make_train_dataset(source, config, global_batch),
            config.train.precise_bn_batches,
        )
        divergence.check_finite_weights(model, "after precise BN")
        workdir_lib.save_weights_atomic(model, workdir_lib.final_weights_path(out))
        checkpoint_selection.write_selection(out, selection)
        if chief and config.train.get("export_backbone", False):
            backbone_export.export(
                model, source, config, out, time.time() - started, initial_epoch
            )
    finally:
        if not chief:
            shutil.rmtree(out, ignore_errors=True)
    return model, source, data_info


def _finished(workdir, config, initial_epoch):
    """Whether `workdir` holds the finished run of `config` (every epoch,
    then the final weights and their selected_checkpoint.json)."""
    return (
        initial_epoch >= config.train.epochs
        and os.path.isfile(workdir_lib.final_weights_path(workdir))
        and os.path.isfile(os.path.join(workdir, eval_records.SELECTED_CHECKPOINT_FILE))
    )


def _checked_pre_fit_phases(config):
    """The method's pre-fit phases, each phase config checked before writing."""
    phases = method_phases.pre_fit_phases(config)
    for phase in phases:
        try:
            config_checks.check_config(phase.config)
        except ValueError as e:
            raise ValueError(
                f"{e} ({phase.config_field} sets config.train of the "
                f"{phase.name!r} run before the method's own fit)"
            ) from e
    return phases


def _run_pre_fit_phases(model, phases, workdir, strategy, allow_config_change):
    """Trains each phase in ``<workdir>/<phase.name>`` (resumable: a finished
    phase reruns as a resume with no epochs left), then applies it."""
    for phase in phases:
        directory = os.path.join(workdir, phase.name)
        trained, _, _ = train(
            phase.config, directory, strategy, allow_config_change=allow_config_change
        )
        with strategy.scope():
            phase.apply(model, trained, directory)


def _fit(model, source, config, workdir, strategy, steps, initial_epoch, scores):
    """`model.fit` from `initial_epoch` with the workdir's callbacks; the val
    localization pass adds to `scores` (`checkpoint_selection.SelectionState`)."""
    global_batch = config.train.batch_size
    train_ds = make_train_dataset(
        source,
        config,
        global_batch,
        skip_batches=initial_epoch * steps,
        batch_transform=model.train_batch_transform(),
    )
    val_ds = (
        make_eval_dataset(source, "val", config.eval.batch_size)
        if "val" in source.splits
        else None
    )
    history = os.path.join(workdir, "history.csv")
    workdir_lib.truncate_history(history, initial_epoch)
    val_loc = checkpoint_selection.callbacks(source, config, workdir, scores, initial_epoch)
    callbacks = [
        # The divergence guard first: non-finite weights never reach the val
        # pass, the history or a checkpoint (the last good one stays).
        divergence.DivergenceGuard(initial_epoch),
        # Logs (the learning rate into the epoch logs, then the CSV
        # row), checkpoint last: a kill in between redoes the epoch, and
        # truncate_history drops its stale row. The val localization score
        # joins the logs after TensorBoard (it writes its own summaries).
        workdir_lib.LearningRateLogger(),
        keras.callbacks.TensorBoard(
            os.path.join(workdir, "logs"), update_freq=config.train.log_every_steps
        ),
        *val_loc,
        keras.callbacks.CSVLogger(history, append=initial_epoch > 0),
        workdir_lib.AtomicCheckpoint(workdir, *val_loc),
    ]
    logging.info(
        "training %s / %s on %d images (%d classes), %d steps x %d "
        "epochs, %d replica(s)",
        config.method.name,
        config.model.backbone,
        source.num_examples("train"),
        source.num_classes,
        steps,
        config.train.epochs,
        strategy.num_replicas_in_sync,
    )
    if initial_epoch < config.train.epochs:
        model.fit(
            train_ds,
            epochs=config.train.epochs,
            steps_per_epoch=steps,
            initial_epoch=initial_epoch,
            validation_data=val_ds,
            callbacks=callbacks,
            shuffle=False,  # the tf.data pipeline shuffles
            verbose=2 if os.environ.get("CI") else 1,
        )


FLAGS = flags.FLAGS


define_flags = cli_flags.train_flags


def main(argv):
    del argv
    config = FLAGS.config
    if FLAGS.print_config:
        cli.print_config(config)
        return
    strategy = make_strategy(FLAGS.strategy, FLAGS.cpu_replicas)
    with _workdir_lock(FLAGS.workdir, strategy):  # training and its report
        _train_and_report(config, strategy)


def _train_and_report(config, strategy):
    model, source, data_info = train(
        config,
        FLAGS.workdir,
        strategy,
        allow_config_change=FLAGS.allow_config_change,
        evaluate=FLAGS.evaluate and is_chief(strategy),
    )
    if not FLAGS.evaluate or not is_chief(strategy):  # one evaluation per cluster
        return
    if getattr(source, "multi_label", False):
        # VOC / COCO: SPN's own protocol (pointing game, CorLoc, mAP).
        result = multilabel.evaluate_and_report(model, source, config, FLAGS.workdir)
        print("\n" + report.table_heading("test", config, "SPN multi-label protocol"))
        print(multilabel.format_table(result))
        files = "spn_protocol.json"
    else:
        metrics = eval_records.finished_report(FLAGS.workdir, config)
        if metrics is not None:
            print(
                f"The test evaluation of these weights and this config is in "
                f"{os.path.join(FLAGS.workdir, eval_records.REPORT_FILE)}: not "
                "evaluated again (wsol-eval re-runs it; --noevaluate skips it)."
            )
        else:
            metrics = evaluator.evaluate_and_report(model, source, config, FLAGS.workdir)
        print("\n" + report.table_heading("test", config))
        print(report.format_table(metrics))
        files = "metrics.json, heatmaps.png, box_accuracy.png"
    print(f"Report written to {os.path.abspath(FLAGS.workdir)}/ ({files})")


def run_main():
    cli.run(main, define_flags, __doc__, "wsol-train", config_flag=True)


if __name__ == "__main__":
    run_main()
