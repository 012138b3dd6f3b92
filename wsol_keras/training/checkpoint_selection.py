"""Localization on the val split during training, and the checkpoint it selects.

clovaai/wsolevaluation (Choe et al., "Evaluating Weakly Supervised Object
Localization Methods Right", CVPR 2020; its released ``main.py``) evaluates
the val split (``train-fullsup``) before training ("epoch 0") and after every
epoch, and keeps a ``best`` checkpoint by the localization score: MaxBoxAccV2
(mean over the IoU thresholds of the best box accuracy, every contour) on box
data (CUB, ILSVRC), PxAP on mask data (OpenImages). ``--eval_checkpoint_type``
(default ``last``) picks the checkpoint the test split is then evaluated on.
The best epoch is the first one with the maximal score (``list.index(max)``:
a later tie does not replace it).

Here `ValLocalization` does the same with the package's evaluator pieces (the
one map path `wsol_keras.localization.maps.Localizer` through
`wsol_keras.evaluation.evaluator.make_map_fn`, `wsol_keras.evaluation.metrics.BoxAccuracy` /
`wsol_keras.evaluation.metrics.PxAP`), every ``config.train.val_localization_every``
epochs (and always after the last one; 0 disables). The score is MaxBoxAccV2
over ``config.eval.iou_thresholds`` when the val images have boxes, else PxAP
when they have masks. It goes into the epoch logs as ``val_max_box_acc_v2`` /
``val_pxap`` (a history.csv column; NaN in epochs without a pass), and to
TensorBoard (``logs/val_localization``, step = epochs done, 0 = before
training) with a few val images blended with their maps.

The score is computed with the model as it trains, i.e. with the BatchNorm
moving statistics (as wsolevaluation's ``model.eval()``); the population
statistics of precise BN (`wsol_keras.training.precise_bn`) are computed once, after
the checkpoint is selected.

``config.train.checkpoint_selection``: ``"last"`` (wsolevaluation's default)
keeps the final epoch; ``"best"`` writes the best epoch's weights
(``checkpoints/best-epoch-N.weights.h5`` and ``checkpoints/best.json``), and
`select_checkpoint` loads them after training. The scores so far live in
``checkpoints/last.json`` (committed with each epoch by
`wsol_keras.training.workdir.AtomicCheckpoint`), so a resumed run selects what an
uninterrupted one selects.
"""

import math
import os

from absl import logging
import keras
import numpy as np
import tensorflow as tf

from wsol_keras.evaluation import passes
from wsol_keras.evaluation import protocol as eval_protocol
from wsol_keras.evaluation import records as eval_records
from wsol_keras.evaluation import evaluator as evaluate
from wsol_keras.evaluation import metrics as metrics_lib
from wsol_keras.evaluation import report
from wsol_keras.training import workdir as workdir_lib
SELECTIONS = ("last", "best")
SPLIT = "val"
BOX_SCORE = "max_box_acc_v2"
MASK_SCORE = "pxap"
STATE_KEY = "val_localization"  # its section of checkpoints/last.json
BEST_FILE = "best.json"
TENSORBOARD_DIR = "val_localization"  # under the workdir's logs/


def best_weights_name(epoch):
    return f"best-epoch-{int(epoch)}.weights.h5"


def score_split(
    results_fn, source, config, split=SPLIT, max_images=None, metric=None, on_batch=None
):
    """The localization score of one pass over `split`.

    Args:
        results_fn: batch -> numpy results with "maps" (`evaluate.batch_results`).
        metric: `BOX_SCORE`, `MASK_SCORE`, or None: boxes if the split has
            any, else masks.
        on_batch: called as on_batch(batch, results) (heat-map images).

    Returns:
        (metric, score in percent, images scored).

    Raises:
        ValueError: the split has neither boxes nor masks (for `metric`).
    """
    thresholds = eval_protocol.cam_thresholds(config)
    boxes = metrics_lib.BoxAccuracy(
        cam_thresholds=thresholds,
        iou_thresholds=tuple(int(i) for i in config.eval.iou_thresholds),
        multi_contour=True,
    )
    masks = metrics_lib.PxAP(cam_thresholds=thresholds)
    for batch, results in passes.iterate(
        results_fn,
        source,
        split,
        config.eval.batch_size,
        max_images,
        desc=f"{split} localization",
    ):
        maps = results["maps"]
        rows = passes.boxed_rows(batch)
        if metric != MASK_SCORE and rows.any():
            # The test protocol's boxes and maps (eval.image_size_mode: integer
            # boxes at S x S, or maps and boxes at the original size).
            for view in eval_protocol.views(batch, results, rows, config):
                boxes.update(view.scoremap[None], [view.gt])
        mask_rows = batch["has_mask"].numpy()
        # PxAP costs a histogram per image: only while it may be the score.
        if metric != BOX_SCORE and not boxes.num_images and mask_rows.any():
            masks.update(maps[mask_rows], batch["mask"].numpy()[mask_rows])
        if on_batch is not None:
            on_batch(batch, results)
    if metric != MASK_SCORE and boxes.num_images:
        return BOX_SCORE, boxes.result()["max_box_acc"], boxes.num_images
    if metric != BOX_SCORE and masks.num_images:
        return MASK_SCORE, masks.result()["pxap"], masks.num_images
    raise ValueError(
        f"the {split} split of {config.data.name!r} has no "
        f"{'boxes' if metric == BOX_SCORE else 'masks' if metric else 'boxes or masks'}"
        " to score localization on; set --config.train.val_localization_every=0 "
        "(and checkpoint_selection=last)"
    )


class SelectionState:
    """The val scores by epochs done (0 = before training) and the best epoch.

    wsolevaluation's ``PerformanceMeter``: the best is the maximal score, the
    earliest epoch on ties.
    """

    def __init__(self, metric=None, scores=None):
        self.metric = metric
        self.scores = {int(e): float(s) for e, s in (scores or {}).items()}

    def add(self, epoch, score):
        """Records `score` for `epoch`; returns whether it is the best now."""
        score = float(score)
        if not math.isfinite(score):
            raise ValueError(f"val localization score of epoch {epoch} is {score}")
        self.scores[int(epoch)] = score
        return self.best_epoch == int(epoch)

    @property
    def best_epoch(self):
        if not self.scores:
            return None
        return max(self.scores, key=lambda e: (self.scores[e], -e))

    @property
    def best_score(self):
        return self.scores[self.best_epoch] if self.scores else None

    def to_json(self):
        return {
            "metric": self.metric,
            "split": SPLIT,
            "scores": {str(e): s for e, s in sorted(self.scores.items())},
            "best_epoch": self.best_epoch,
        }

    @classmethod
    def from_checkpoint(cls, record):
        """The state committed in a `workdir.checkpoint_record` ({}: empty)."""
        section = record.get(STATE_KEY) or {}
        return cls(section.get("metric"), section.get("scores"))


def check_selection(config, source):
    """Raises ValueError when `config.train.checkpoint_selection` cannot work."""
    t = config.train
    selection = t.get("checkpoint_selection", "last")
    if selection not in SELECTIONS:
        raise ValueError(
            f"config.train.checkpoint_selection={selection!r}: expected one of "
            f"{SELECTIONS}"
        )
    if selection != "best":
        return
    why = None
    if not t.get("val_localization_every", 0):
        why = "config.train.val_localization_every is 0 (no val scores)"
    elif getattr(source, "multi_label", False):
        why = "the data is multi-label (no single-class localization score)"
    elif SPLIT not in source.splits:
        why = f"the data has no {SPLIT!r} split"
    if why:
        raise ValueError(
            f"config.train.checkpoint_selection='best' needs val localization "
            f"scores, but {why}; use checkpoint_selection='last'"
        )


def enabled(config, source):
    """Whether the per-epoch val pass runs (it logs why when it does not)."""
    if not config.train.get("val_localization_every", 0):
        return False
    why = None
    if getattr(source, "multi_label", False):
        why = "multi-label data (SPN's protocol is evaluated after training)"
    elif SPLIT not in source.splits:
        why = f"no {SPLIT!r} split"
    if why:
        logging.info("val localization during training is off: %s", why)
        return False
    return True


def callbacks(source, config, workdir, state, initial_epoch):
    """[`ValLocalization`] when the pass is `enabled`, else []."""
    if not enabled(config, source):
        return []
    return [ValLocalization(source, config, workdir, state, initial_epoch)]


class ValLocalization(keras.callbacks.Callback):
    """Scores localization on val during `fit`, logs it, keeps the best weights.

    Place it after `keras.callbacks.TensorBoard` (it writes its own summaries)
    and before `keras.callbacks.CSVLogger` and `workdir.AtomicCheckpoint`
    (pass it as the latter's ``extra_state``).

    Args:
        source: the data source (its val split is scored).
        config: the experiment config.
        workdir: where logs/ and checkpoints/ are.
        state: a `SelectionState` (restored from the checkpoint on resume).
        initial_epoch: epochs already done.
    """

    def __init__(self, source, config, workdir, state, initial_epoch=0):
        super().__init__()
        self.source = source
        self.config = config
        t = config.train
        self.every = int(t.val_localization_every)
        self.max_images = t.get("val_localization_max_images", None)
        self.num_images = int(t.get("val_localization_images", 4))
        self.keep_best = t.get("checkpoint_selection", "last") == "best"
        self.checkpoints = os.path.join(workdir, workdir_lib.CHECKPOINT_DIR)
        self.log_dir = os.path.join(workdir, "logs", TENSORBOARD_DIR)
        self.state = state
        self.initial_epoch = int(initial_epoch)
        self._results_fn = None
        self._writer = None

    def on_train_begin(self, logs=None):
        # wsolevaluation's epoch 0 (the initial weights are a candidate);
        # on a resume the committed scores already hold what ran before.
        if self.state.metric is None or (
            self.initial_epoch == 0 and 0 not in self.state.scores
        ):
            self.evaluate(self.initial_epoch)
        elif self.keep_best and self.state.best_epoch is not None:
            # A run killed after writing a new best but before committing
            # its epoch left best.json ahead of the committed state.
            self._write_best_json()

    def on_epoch_end(self, epoch, logs=None):
        done = epoch + 1
        last = done == int(self.config.train.epochs)
        score = self.evaluate(done) if last or done % self.every == 0 else math.nan
        if logs is not None:
            # Every epoch, so history.csv keeps one column (CSVLogger fixes
            # its columns at the first row it writes).
            logs[f"val_{self.state.metric}"] = score

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def evaluate(self, epochs_done):
        """Scores val now, records it as `epochs_done`'s; returns the score."""
        if self._results_fn is None:
            self._results_fn = evaluate.batch_results(
                evaluate.make_map_fn(self.model, self.config)
            )
        images = _HeatMaps(self.num_images)
        metric, score, count = score_split(
            self._results_fn,
            self.source,
            self.config,
            max_images=self.max_images,
            metric=self.state.metric,
            on_batch=images,
        )
        self.state.metric = metric
        if self.state.add(epochs_done, score) and self.keep_best:
            workdir_lib.save_weights_atomic(
                self.model, os.path.join(self.checkpoints, best_weights_name(epochs_done))
            )
            self._write_best_json()
        logging.info(
            "val %s after %d epoch(s): %.2f on %d images (best %.2f, epoch %d)",
            metric,
            epochs_done,
            score,
            count,
            self.state.best_score,
            self.state.best_epoch,
        )
        self._summaries(epochs_done, score, images)
        return score

    def _write_best_json(self):
        epoch = self.state.best_epoch
        workdir_lib.write_json_atomic(
            os.path.join(self.checkpoints, BEST_FILE),
            {
                "epoch": epoch,
                "score": self.state.best_score,
                "metric": self.state.metric,
                "split": SPLIT,
                "weights": best_weights_name(epoch),
            },
        )

    def _summaries(self, step, score, images):
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.log_dir)
        metric = self.state.metric
        # Always recorded: inside `fit` Keras' TensorBoard callback leaves
        # `record_if(last batch % update_freq == 0)` pushed at epoch end.
        with self._writer.as_default(step=step), tf.summary.record_if(True):
            tf.summary.scalar(f"{SPLIT}/{metric}", score)
            tf.summary.scalar(f"{SPLIT}/{metric}_best", self.state.best_score)
            if images.items:
                tf.summary.image(
                    f"{SPLIT}/heatmaps",
                    np.stack(images.items).astype(np.float32) / 255.0,
                    max_outputs=len(images.items),
                    description="val images blended with their localization maps",
                )
        self._writer.flush()

    def checkpoint_state(self):
        """(fields for checkpoints/last.json, files to keep): see AtomicCheckpoint."""
        best = self.state.best_epoch
        keep = [best_weights_name(best)] if self.keep_best and best is not None else []
        return {STATE_KEY: self.state.to_json()}, keep


class _HeatMaps:
    """The first `n` val images blended with their maps (uint8 RGB)."""

    def __init__(self, n):
        self.n = n
        self.items = []

    def __call__(self, batch, results):
        for image, scoremap in zip(batch["image"].numpy(), results["maps"]):
            if len(self.items) >= self.n:
                return
            self.items.append(report.overlay(image, scoremap))


def select_checkpoint(model, config, workdir, state):
    """Loads the selected weights into `model`; returns what was selected.

    With ``checkpoint_selection="best"`` the best epoch's weights replace the
    model's (the final epoch's); with "last" the model is left as it is.

    Returns:
        dict: "checkpoint" ("best" / "last"), "epoch" (epochs done), "metric",
        "score" and "split" of the selection (None without val scores).
    """
    selection = config.train.get("checkpoint_selection", "last")
    epochs = int(config.train.epochs)
    if selection == "best":
        epoch = state.best_epoch
        path = os.path.join(workdir, workdir_lib.CHECKPOINT_DIR, best_weights_name(epoch))
        if not os.path.exists(path):
            raise FileNotFoundError(
                f"{path} not found: the best checkpoint (epoch {epoch}) of "
                f"{workdir!r} is missing"
            )
        model.load_weights(path)
        logging.info("loaded the best checkpoint %s", path)
    else:
        epoch = epochs
    return {
        "checkpoint": selection,
        "epoch": epoch,
        "metric": state.metric,
        "score": state.scores.get(epoch),
        "split": SPLIT if state.scores else None,
    }


def write_selection(workdir, selection):
    """W/selected_checkpoint.json for the final weights just written."""
    weights = workdir_lib.final_weights_path(workdir)
    workdir_lib.write_json_atomic(
        os.path.join(workdir, eval_records.SELECTED_CHECKPOINT_FILE),
        {
            **selection,
            "weights_sha256": eval_records.weights_sha256(weights),
            "weights_file": os.path.basename(weights),
        },
    )
