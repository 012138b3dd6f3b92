"""The shipped small_cnn weights pretrained on the procedural set
(config.model.weights="synthetic", wsol_keras.models.pretrained)."""

import hashlib
import os

import numpy as np

from wsol_keras.configs import synthetic_cam
from wsol_keras.models import backbones
from wsol_keras.models import pretrained
from wsol_keras.models.registry import build_model

PATH = os.path.join(pretrained.PRETRAINED_DIR, pretrained.SHIPPED["small_cnn"])


def test_shipped_file_matches_its_manifest():
    manifest = pretrained.read_manifest(PATH)
    with open(PATH, "rb") as f:
        blob = f.read()
    assert manifest["sha256"] == hashlib.sha256(blob).hexdigest()
    assert len(blob) <= 10 * 2**20 and manifest["backbone"] == "small_cnn"
    # well above chance (1/240) on the pretraining set's val split
    assert manifest["val_top1"] > 10 / manifest["num_classes"]


def test_synthetic_weights_give_the_recorded_probe_features():
    probe = pretrained.read_manifest(PATH)["probe"]
    size = probe["image_size"]
    net = backbones.build_backbone("small_cnn", size, weights="synthetic")
    fresh = backbones.build_backbone("small_cnn", size, weights=None)
    want = np.asarray(probe["features"])
    assert np.abs(pretrained.probe_features(fresh, size) - want).max() > 1e-3
    np.testing.assert_allclose(pretrained.probe_features(net, size), want, rtol=1e-4, atol=1e-5)


def test_a_benchmark_model_starts_from_them_with_a_fresh_head():
    config = synthetic_cam.get_config("smoke")
    config.model.weights = "synthetic"
    model = build_model(config, {"num_classes": 8, "image_size": 64})
    raw = backbones.BACKBONES["small_cnn"].constructor((64, 64, 3), PATH)
    layer = model.backbone.get_layer("small_cnn_features").get_layer("stage1_conv1")
    np.testing.assert_array_equal(layer.get_weights()[0], raw.get_layer("stage1_conv1").get_weights()[0])
    assert model(np.zeros((1, 64, 64, 3), np.float32))["logits"].shape == (1, 8)
