"""Val localization during training and checkpoint selection (wsolevaluation's
``--eval_checkpoint_type``): the score is the evaluator's, the best epoch is the
first with the highest score, it survives a resume, and the report names it."""

import csv
import glob
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from wsol_keras import data as data_lib
from wsol_keras.evaluation import records as eval_records
from wsol_keras.evaluation import evaluator as evaluate
from wsol_keras.training import trainer
from wsol_keras.training import checkpoint_selection as val_localization
from wsol_keras.training import workdir as workdir_lib
from wsol_keras.configs import synthetic_cam


def _config(epochs=1, selection="last"):
    config = synthetic_cam.get_config("smoke")
    config.train.epochs = epochs
    config.train.checkpoint_selection = selection
    return config


def _events(directory):
    """[(tag, step, summary value)] of every event file under `directory`."""
    out = []
    for path in glob.glob(os.path.join(directory, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                out.append((value.tag, event.step, value))
    return out


def test_callback_score_is_the_evaluators_and_goes_to_tensorboard(tmp_path):
    config = _config()
    config.eval.max_images = None  # both passes see the whole (16-image) val split
    config.train.val_localization_max_images = None
    source = data_lib.get_source(config.data)
    model = trainer.build_compiled_model(config, trainer.data_info_of(source, config))
    # A few steps so the maps are not those of the initial weights.
    model.fit(
        trainer.make_train_dataset(source, config, config.train.batch_size),
        steps_per_epoch=3,
        shuffle=False,
        verbose=0,
    )
    state = val_localization.SelectionState()
    callback = val_localization.ValLocalization(source, config, str(tmp_path), state)
    callback.set_model(model)
    score = callback.evaluate(1)
    callback.on_train_end()

    reference = evaluate.evaluate_model(model, source, config, split="val")
    assert state.metric == "max_box_acc_v2"
    assert score == pytest.approx(reference["max_box_acc_v2"], abs=1e-9)
    # On masks the score is PxAP (the OpenImages rule), again the evaluator's.
    _, pxap, count = val_localization.score_split(
        evaluate.batch_results(evaluate.make_map_fn(model, config)),
        source,
        config,
        metric=val_localization.MASK_SCORE,
    )
    assert count == 16 and pxap == pytest.approx(reference["pxap"], abs=1e-9)

    events = _events(os.path.join(str(tmp_path), "logs", "val_localization"))
    scalars = {t: v.tensor for t, _, v in events if v.metadata.plugin_data.plugin_name == "scalars"}
    assert tf.make_ndarray(scalars["val/max_box_acc_v2"]) == pytest.approx(score, rel=1e-6)
    images = [
        (t, s, v) for t, s, v in events if v.metadata.plugin_data.plugin_name == "images"
    ]
    assert [(t, s) for t, s, _ in images] == [("val/heatmaps", 1)]
    # An image summary tensor: width, height, then the encoded images.
    encoded = tf.make_ndarray(images[0][2].tensor)
    assert len(encoded) == 2 + config.train.val_localization_images
    assert [int(encoded[0]), int(encoded[1])] == [64, 64]


def test_summaries_are_written_under_the_record_if_keras_tensorboard_leaves(tmp_path):
    """Inside `fit`, Keras' TensorBoard callback keeps
    ``tf.summary.record_if(batch % update_freq == 0)`` pushed for the last
    train batch when the epoch ends: with log_every_steps not dividing the
    epoch's steps the val scores and heat maps were silently not recorded."""
    config = _config()
    source = data_lib.get_source(config.data)
    model = trainer.build_compiled_model(config, trainer.data_info_of(source, config))
    state = val_localization.SelectionState()
    callback = val_localization.ValLocalization(source, config, str(tmp_path), state)
    callback.set_model(model)
    with tf.summary.record_if(False):  # what Keras leaves at epoch 3 of 7 steps, freq 2
        callback.evaluate(1)
    callback.on_train_end()
    tags = {t for t, _, _ in _events(os.path.join(str(tmp_path), "logs", "val_localization"))}
    assert {"val/max_box_acc_v2", "val/max_box_acc_v2_best", "val/heatmaps"} <= tags


def test_best_epoch_is_the_first_with_the_highest_score():
    values = [40.0, 55.0, 55.0, 50.0, 12.5]
    state = val_localization.SelectionState("max_box_acc_v2")
    new_best = [state.add(epoch, v) for epoch, v in enumerate(values)]
    # wsolevaluation's PerformanceMeter: best_epoch = values.index(max(values)).
    assert state.best_epoch == values.index(max(values)) == 1
    assert state.best_score == 55.0
    assert new_best == [True, True, False, False, False]
    with pytest.raises(ValueError, match="epoch 5 is nan"):
        state.add(5, float("nan"))
    # The checkpoint keeps the scores of the committed epochs.
    restored = val_localization.SelectionState.from_checkpoint(
        {val_localization.STATE_KEY: json.loads(json.dumps(state.to_json()))}
    )
    assert (restored.metric, restored.scores, restored.best_epoch) == (
        "max_box_acc_v2",
        dict(enumerate(values)),
        1,
    )


def test_best_selection_needs_val_scores_and_fails_before_writing(tmp_path):
    config = _config(selection="best")
    config.train.val_localization_every = 0
    with pytest.raises(ValueError, match="val_localization_every is 0"):
        trainer.train(config, str(tmp_path / "run"))
    config = _config(selection="newest")
    with pytest.raises(ValueError, match="checkpoint_selection='newest'"):
        trainer.train(config, str(tmp_path / "run"))
    assert not os.path.exists(tmp_path / "run")


class _Scripted:
    """Replaces the val pass: scores from a list; records the weights scored."""

    def __init__(self, monkeypatch):
        self.scores = []
        self.weights = []  # the model's weights at each pass
        self.model = None

        def make_map_fn(model, config):
            self.model = model
            return lambda images, labels: {}

        def score_split(results_fn, source, config, **kwargs):
            self.weights.append([np.array(w) for w in self.model.weights])
            return val_localization.BOX_SCORE, self.scores.pop(0), 16

        monkeypatch.setattr(evaluate, "make_map_fn", make_map_fn)
        monkeypatch.setattr(val_localization, "score_split", score_split)


def _assert_same_weights(model, weights):
    for a, b in zip(model.weights, weights):
        np.testing.assert_array_equal(np.array(a), b, err_msg=a.path)


def _history_scores(workdir):
    with open(os.path.join(workdir, "history.csv")) as f:
        return [float(r["val_max_box_acc_v2"]) for r in csv.DictReader(f)]


def test_best_checkpoint_is_evaluated_and_survives_a_resume(tmp_path, monkeypatch):
    wd = str(tmp_path / "run")
    config = _config(epochs=4, selection="best")
    config.train.precise_bn_batches = 0  # final weights == the selected epoch's
    scripted = _Scripted(monkeypatch)
    # Epochs done 0..3; epoch 3 is the best so far, but the run dies after
    # writing its best weights and before its checkpoint is committed.
    scripted.scores = [10.0, 50.0, 20.0, 60.0]
    commit = workdir_lib.AtomicCheckpoint.on_epoch_end

    def dies_in_epoch_3(self, epoch, logs=None):
        if epoch == 2:
            raise KeyboardInterrupt("killed before epoch 3 is committed")
        return commit(self, epoch, logs)

    monkeypatch.setattr(workdir_lib.AtomicCheckpoint, "on_epoch_end", dies_in_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        trainer.train(config, wd)
    with open(os.path.join(wd, "checkpoints", val_localization.BEST_FILE)) as f:
        assert json.load(f)["epoch"] == 3  # ahead of the committed epoch 2
    before_kill = scripted.weights

    # The resumed run redoes epoch 3 (now 20) and runs epoch 4 (50, a tie
    # with epoch 1, which keeps it: the earliest wins); the best is epoch 1.
    monkeypatch.setattr(workdir_lib.AtomicCheckpoint, "on_epoch_end", commit)
    scripted.weights = []
    scripted.scores = [20.0, 50.0]
    model, source, _ = trainer.train(config, wd)
    assert scripted.scores == []  # no pass beyond epochs 3 and 4
    _assert_same_weights(model, before_kill[1])
    with pytest.raises(AssertionError):  # the last epoch's weights differ
        _assert_same_weights(model, scripted.weights[-1])
    assert _history_scores(wd) == [50.0, 20.0, 20.0, 50.0]
    with open(os.path.join(wd, "checkpoints", val_localization.BEST_FILE)) as f:
        best = json.load(f)
    assert (best["epoch"], best["score"], best["metric"]) == (1, 50.0, "max_box_acc_v2")
    assert sorted(os.listdir(os.path.join(wd, "checkpoints"))) == [
        "best-epoch-1.weights.h5",
        "best.json",
        "epoch-4.weights.h5",
        "last.json",
    ]

    monkeypatch.undo()  # the real evaluator for the report
    metrics = evaluate.evaluate_and_report(model, source, config, wd)
    with open(os.path.join(wd, "metrics.json")) as f:
        saved = json.load(f)
    for record in (metrics, saved):
        assert record["checkpoint"] == "best"
        assert record["checkpoint_epoch"] == 1
        assert record["checkpoint_selection_score"] == 50.0
        assert record["checkpoint_selection_metric"] == "max_box_acc_v2"
        assert record["checkpoint_selection_split"] == "val"


def test_the_val_pass_leaves_training_unchanged_and_last_is_reported(tmp_path):
    runs = {}
    for every in (0, 2):
        config = _config(epochs=2)
        config.train.val_localization_every = every
        runs[every] = (config, *trainer.train(config, str(tmp_path / f"every{every}")))
    assert not os.path.exists(tmp_path / "every0" / "logs" / "val_localization")
    for a, b in zip(runs[0][1].weights, runs[2][1].weights):
        np.testing.assert_array_equal(np.array(a), np.array(b), err_msg=a.path)

    config, model, source, _ = runs[2]
    wd = str(tmp_path / "every2")
    metrics = evaluate.evaluate_and_report(model, source, config, wd)
    assert metrics["checkpoint"] == "last" and metrics["checkpoint_epoch"] == 2
    scores = _history_scores(wd)
    # Epoch 1 has no pass (NaN in its row); epoch 2 is the last, always scored.
    assert np.isnan(scores[0]) and 0.0 <= scores[1] <= 100.0
    assert metrics["checkpoint_selection_score"] == scores[1]
    assert not glob.glob(os.path.join(wd, "checkpoints", "best*"))


def test_records_name_no_checkpoint_for_weights_replaced_after_training(tmp_path):
    weights = tmp_path / "model.weights.h5"
    weights.write_bytes(b"trained")
    digest = eval_records.weights_sha256(str(weights))
    selected = {"checkpoint": "best", "epoch": 3, "metric": "pxap", "score": 61.5}
    (tmp_path / eval_records.SELECTED_CHECKPOINT_FILE).write_text(
        json.dumps({**selected, "split": "val", "weights_sha256": digest})
    )
    assert eval_records.selected_checkpoint(str(weights), digest) == {
        "checkpoint": "best",
        "checkpoint_epoch": 3,
        "checkpoint_selection_metric": "pxap",
        "checkpoint_selection_score": 61.5,
        "checkpoint_selection_split": "val",
    }
    weights.write_bytes(b"fine-tuned elsewhere")
    other = eval_records.weights_sha256(str(weights))
    assert set(eval_records.selected_checkpoint(str(weights), other).values()) == {None}
