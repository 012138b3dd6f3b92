"""wsol-train's two phases for SLT-Net (Sec. 3.1, Fig. 2b: the classifier is
trained independently): phase 1 trains the classifier into
<workdir>/classifier on its own schedule, phase 2 trains localizer and
regressor with it frozen; an interrupted run resumes exactly in either phase."""

import csv
import os

import keras
import numpy as np
import pytest

from wsol_keras.training import trainer
from wsol_keras.training import workdir as workdir_lib
from wsol_keras.configs import synthetic_slt

CLS_EPOCHS = 2
CLS_LR = 0.01
SLT_EPOCHS = 2


def _config(head="gap"):
    config = synthetic_slt.get_config("smoke")
    config.method.classifier_head = head
    config.data.image_size = 32
    config.train.epochs = SLT_EPOCHS
    # No val localization pass after each epoch: these tests check the phases'
    # epochs, schedules, resume and served classes, not the val scores (the
    # pass's own tests: training/test_checkpoint_selection.py, and resume with
    # it: training/test_resume.py). It was ~1/5 of each run's time.
    config.train.val_localization_every = 0
    schedule = config.method.classifier_train
    schedule.epochs = CLS_EPOCHS
    schedule.batch_size = 8
    schedule.learning_rate = CLS_LR
    schedule.lr_schedule = "step"
    schedule.lr_decay_at_epochs = (1,)
    schedule.lr_decay_factor = 0.1
    return config


def _history(workdir):
    with open(os.path.join(workdir, "history.csv")) as f:
        return list(csv.DictReader(f))


class _Interrupted(Exception):
    pass


def _train_until(config, workdir, monkeypatch, stop=None):
    """Runs wsol-train; with `stop` = (model name, epoch), stops it at the start
    of that epoch of that model's fit (after the previous epoch's checkpoint).

    Returns:
        [(model name, epoch)] of every epoch begun.
    """
    begun = []
    begin = keras.callbacks.CallbackList.on_epoch_begin

    def on_epoch_begin(self, e, logs=None):
        begun.append((self.model.name, e))
        if (self.model.name, e) == stop:
            raise _Interrupted
        return begin(self, e, logs)

    with monkeypatch.context() as m:
        m.setattr(keras.callbacks.CallbackList, "on_epoch_begin", on_epoch_begin)
        if stop is None:
            model, _, _ = trainer.train(config, workdir)
            return begun, model
        with pytest.raises(_Interrupted):
            trainer.train(config, workdir)
    return begun, None


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("slt_two_phase") / "whole")
    trainer.train(_config(), workdir)
    return workdir


def test_phase_one_has_its_own_epochs_and_schedule(whole):
    phase = os.path.join(whole, "classifier")
    rows = _history(phase)
    assert [int(r["epoch"]) for r in rows] == list(range(CLS_EPOCHS))
    # Step schedule: CLS_LR, x0.1 from epoch 1 (the rate logged after epoch e
    # is the rate of its last step).
    np.testing.assert_allclose(
        [float(r["learning_rate"]) for r in rows], [CLS_LR, CLS_LR * 0.1], rtol=1e-6
    )
    config, _ = workdir_lib.read_config(phase)
    assert config.method.name == "cam" and tuple(config.method.conv_filters) == ()
    assert config.train.epochs == CLS_EPOCHS and config.train.batch_size == 8
    # Phase 2: the localizer's own epochs and rate (cosine from 0.002 over
    # 2 x 2 steps; epoch 0's last step is step 1).
    rows = _history(whole)
    assert [int(r["epoch"]) for r in rows] == list(range(SLT_EPOCHS))
    expected = 0.002 * 0.5 * (1 + np.cos(np.pi * 1 / 4))
    assert float(rows[0]["learning_rate"]) == pytest.approx(expected, rel=1e-5)


@pytest.fixture(scope="module")
def whole_vgg_fc(tmp_path_factory):
    """The two phases with VGG16's fc6 / fc7 head (SLT-Net Sec. 4.2); one
    epoch each, 2 steps."""
    workdir = str(tmp_path_factory.mktemp("slt_two_phase_vgg_fc") / "whole")
    config = _config("vgg_fc")
    config.train.epochs = 1
    config.method.classifier_train.epochs = 1
    trainer.train(config, workdir)
    return workdir


def test_vgg_fc_phase_one_trains_the_same_head(whole_vgg_fc):
    config, _ = workdir_lib.read_config(os.path.join(whole_vgg_fc, "classifier"))
    assert config.method.name == "slt_classifier" and config.method.head == "vgg_fc"
    slt, _, _ = workdir_lib.load_model(whole_vgg_fc)
    assert slt.classifier_pool.fc1.kernel.shape == (7 * 7 * 128, 4096)


@pytest.mark.parametrize("fixture", ["whole", "whole_vgg_fc"])
def test_slt_logits_are_the_phase_one_classifiers(fixture, request):
    whole = request.getfixturevalue(fixture)
    slt, _, _ = workdir_lib.load_model(whole)
    cam, _, _ = workdir_lib.load_model(os.path.join(whole, "classifier"))
    x = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype(np.float32)
    np.testing.assert_allclose(
        slt(x)["logits"].numpy(), cam(x)["logits"].numpy(), rtol=1e-5, atol=1e-4
    )


@pytest.mark.slow
def test_interrupted_in_either_phase_resumes_exactly(whole, tmp_path, monkeypatch):
    workdir = str(tmp_path / "interrupted")
    begun, _ = _train_until(_config(), workdir, monkeypatch, stop=("cam", 1))
    assert begun == [("cam", 0), ("cam", 1)]
    assert len(_history(os.path.join(workdir, "classifier"))) == 1
    assert not os.path.exists(os.path.join(workdir, "history.csv"))
    # Phase 1 resumes at its second epoch; phase 2 is stopped at its second.
    begun, _ = _train_until(_config(), workdir, monkeypatch, stop=("slt", 1))
    assert begun == [("cam", 1), ("slt", 0), ("slt", 1)]
    assert len(_history(os.path.join(workdir, "classifier"))) == CLS_EPOCHS
    assert len(_history(workdir)) == 1
    # Phase 2 resumes at its second epoch; phase 1 is not run again.
    begun, resumed = _train_until(_config(), workdir, monkeypatch)
    assert begun == [("slt", 1)]
    assert len(_history(workdir)) == SLT_EPOCHS

    reference, _, _ = workdir_lib.load_model(whole)
    for a, b in zip(resumed.weights, reference.weights):
        np.testing.assert_allclose(
            np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5, err_msg=a.path
        )
    for name in ("classifier/history.csv", "history.csv"):
        got = _history(os.path.join(workdir, os.path.dirname(name)))
        want = _history(os.path.join(whole, os.path.dirname(name)))
        for g, w in zip(got, want):
            for key in ("learning_rate", "loss"):
                assert float(g[key]) == pytest.approx(float(w[key]), rel=1e-4), name


@pytest.mark.slow
@pytest.mark.parametrize("fixture", ["whole", "whole_vgg_fc"])
def test_savedmodel_export_serves_the_frozen_classifiers_classes(
    fixture, request, tmp_path
):
    import tensorflow as tf

    whole = request.getfixturevalue(fixture)

    from wsol_keras.export import saved_model_lib

    slt, config, data_info = workdir_lib.load_model(whole)
    cam, _, _ = workdir_lib.load_model(os.path.join(whole, "classifier"))
    path = saved_model_lib.export_model(
        slt, config, data_info, str(tmp_path), model_name="m", version=1,
        cam_threshold=0.5,
    )
    x = np.random.default_rng(1).integers(0, 256, (4, 32, 32, 3)).astype(np.uint8)
    served = tf.saved_model.load(path).signatures["image_tensor"](images=tf.constant(x))
    want = np.argmax(cam(x.astype(np.float32))["logits"].numpy(), axis=-1)
    np.testing.assert_array_equal(served["classes"].numpy()[:, 0], want)


def test_bad_classifier_sources_fail_before_the_workdir_is_written(tmp_path):
    workdir = tmp_path / "run"
    config = _config()
    config.method.classifier_train.learning_rate = 0.0
    with pytest.raises(ValueError, match="train.learning_rate=0.0.*classifier_train"):
        trainer.train(config, str(workdir))
    assert not workdir.exists()
    config = _config()
    config.method.classifier_train.epochs = 0
    config.method.classifier_weights = str(tmp_path / "no_such_run")
    with pytest.raises(FileNotFoundError, match="no_such_run"):
        trainer.train(config, str(workdir))
    assert not workdir.exists()
