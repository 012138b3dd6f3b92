"""Pretraining exports (training.backbone_export) and loading them as
config.model.weights (models.pretrained), the way "imagenet" loads Keras'
weights: the network without its top, by layer name, heads fresh."""

import hashlib
import json
import os
import shutil

import numpy as np
import pytest

from wsol_keras.configs import synthetic_cam
from wsol_keras.models import backbones
from wsol_keras.models import pretrained
from wsol_keras.models.registry import build_model
from tests.file_modules import load_module

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """The :smoke pretraining config, run once (CI never pretrains for real)."""
    from wsol_keras.training import trainer

    config = load_module(
        "pretrain_small_cnn", os.path.join(REPO, "configs", "pretrain_small_cnn.py")
    ).get_config("smoke")
    workdir = str(tmp_path_factory.mktemp("pretrain"))
    trainer.train(config, workdir)
    return workdir, config


def test_smoke_pretraining_writes_weights_and_manifest(smoke_run):
    workdir, config = smoke_run
    path = os.path.join(workdir, "backbone.weights.h5")
    with open(os.path.join(workdir, "backbone.json")) as f:
        manifest = json.load(f)
    with open(path, "rb") as f:
        assert manifest["sha256"] == hashlib.sha256(f.read()).hexdigest()
    assert manifest["backbone"] == "small_cnn" and manifest["num_classes"] == 240
    assert 0.0 <= manifest["val_top1"] <= 1.0
    assert manifest["wall_time_s"] > 0 and manifest["machine"]["cpu_count"] >= 1
    assert manifest["config"]["data"]["name"] == "pretrain"
    assert np.asarray(manifest["probe"]["logits"]).shape == (2, 240)
    assert os.path.exists(os.path.join(workdir, "history.csv"))


def test_loading_the_export_gives_the_recorded_features(smoke_run):
    workdir, config = smoke_run
    path = os.path.join(workdir, "backbone.weights.h5")
    with open(pretrained.manifest_path(path)) as f:
        probe = json.load(f)["probe"]
    size = probe["image_size"]
    fresh = backbones.build_backbone("small_cnn", size, weights=None)
    loaded = backbones.build_backbone("small_cnn", size, weights=path)
    want = np.asarray(probe["features"])
    got = pretrained.probe_features(loaded, size)
    assert np.abs(pretrained.probe_features(fresh, size) - want).max() > 1e-3
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_a_method_model_takes_the_backbone_and_keeps_fresh_heads(smoke_run):
    workdir, _ = smoke_run
    path = os.path.join(workdir, "backbone.weights.h5")
    config = synthetic_cam.get_config("smoke")
    config.data.image_size = 32
    config.model.weights = path
    info = {"num_classes": 3, "image_size": 32}
    model = build_model(config, info)
    raw = backbones.BACKBONES["small_cnn"].constructor((32, 32, 3), path)
    conv = model.backbone.get_layer("small_cnn_features").get_layer("stage3_conv3")
    np.testing.assert_array_equal(conv.get_weights()[0], raw.get_layer("stage3_conv3").get_weights()[0])
    # the 3-class head is new (the pretraining head had 240 classes)
    assert model(np.zeros((1, 32, 32, 3), np.float32))["logits"].shape == (1, 3)


def test_a_file_of_another_backbone_is_refused_naming_both(smoke_run, tmp_path):
    workdir, _ = smoke_run
    path = str(tmp_path / "mine.weights.h5")
    shutil.copy(os.path.join(workdir, "backbone.weights.h5"), path)
    manifest = json.load(open(os.path.join(workdir, "backbone.json")))
    manifest["backbone"] = "mobilenet_v2"
    json.dump(manifest, open(pretrained.manifest_path(path), "w"))
    with pytest.raises(ValueError, match="'mobilenet_v2'.*backbone='small_cnn'"):
        backbones.build_backbone("small_cnn", 32, weights=path)


def test_a_file_without_manifest_that_does_not_fit_is_refused(tmp_path):
    import keras

    other = keras.Sequential([keras.Input((8,)), keras.layers.Dense(3, name="dense")])
    path = str(tmp_path / "other.weights.h5")
    other.save_weights(path)
    with pytest.raises(ValueError, match="does not fit backbone 'small_cnn'"):
        backbones.build_backbone("small_cnn", 32, weights=path)


def test_synthetic_for_a_backbone_without_shipped_weights_is_refused():
    with pytest.raises(ValueError, match="'vgg16' has no weights pretrained"):
        pretrained.resolve_weights("vgg16", "synthetic")
