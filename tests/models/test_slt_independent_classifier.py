"""SLT-Net's independently trained classifier (SLT-Net Sec. 3.1, Fig. 2b):
loaded from a separately trained classifier and frozen while localizer and
regressor train (`wsol_keras.models.slt_classifier_phase`)."""

import json
import os

import numpy as np
import pytest

from wsol_keras.models import slt_classifier_phase
from wsol_keras.models import phases as method_phases
from wsol_keras.training import trainer as train_lib
from wsol_keras.training import workdir as workdir_lib
from wsol_keras.configs import synthetic_cam, synthetic_slt
from wsol_keras.models.registry import build_model

SIZE = 32
INFO = {"num_classes": 4, "image_size": SIZE, "class_names": ["a", "b", "c", "d"]}


def _images(n=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 255, (n, SIZE, SIZE, 3)).astype(np.float32)


def _perturb(model, seed=1):
    """Every weight moved (BN statistics included), so a copy that misses
    any variable, or maps the 1x1 kernel wrongly, changes the logits."""
    rng = np.random.default_rng(seed)
    for v in model.weights:
        value = v.numpy()
        if v.path.endswith("moving_variance"):
            value = value * rng.uniform(0.5, 1.5, value.shape)
        else:
            value = value + 0.1 * rng.standard_normal(value.shape)
        v.assign(value.astype(np.float32))


def _cam_workdir(path, conv_filters=(), info=INFO):
    """A finished CAM workdir: config.json + model.weights.h5 (perturbed)."""
    config = synthetic_cam.get_config("smoke")
    config.data.image_size = SIZE
    config.method.conv_filters = tuple(conv_filters)
    model = build_model(config, info)
    _perturb(model)
    workdir_lib.write_config(str(path), config, info)
    workdir_lib.save_weights_atomic(model, workdir_lib.final_weights_path(str(path)))
    return model


def _slt_config(**method):
    config = synthetic_slt.get_config("smoke")
    config.data.image_size = SIZE
    for k, v in method.items():
        config.method[k] = v
    return config


def test_loaded_classifier_gives_the_cam_classifiers_logits(tmp_path):
    """CAM: GAP(1x1 conv(f)); SLT: Dense(GAP(f)) with the copied weights
    (ACoL Sec. 3.1) -- two computations, the same logits."""
    cam = _cam_workdir(tmp_path / "cam")
    config = _slt_config(classifier_weights=str(tmp_path / "cam"))
    slt = build_model(config, INFO)
    x = _images()
    want = cam(x)["logits"].numpy()
    before = slt(x)["logits"].numpy()
    assert np.abs(before - want).max() > 1e-2  # the test can fail
    method_phases.prepare(slt, config, INFO)
    got = slt(x)["logits"].numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)


def test_loading_from_the_weights_file_and_from_an_slt_workdir(tmp_path):
    cam = _cam_workdir(tmp_path / "cam")
    weights = workdir_lib.final_weights_path(str(tmp_path / "cam"))
    config = _slt_config(classifier_weights=weights)
    first = build_model(config, INFO)
    method_phases.prepare(first, config, INFO)
    x = _images()
    np.testing.assert_allclose(
        first(x)["logits"].numpy(), cam(x)["logits"].numpy(), rtol=1e-5, atol=1e-4
    )
    # An SLT workdir gives its classifier branch.
    workdir_lib.write_config(str(tmp_path / "slt"), config, INFO)
    workdir_lib.save_weights_atomic(
        first, workdir_lib.final_weights_path(str(tmp_path / "slt"))
    )
    config2 = _slt_config(classifier_weights=str(tmp_path / "slt"))
    second = build_model(config2, INFO)
    method_phases.prepare(second, config2, INFO)
    np.testing.assert_allclose(
        second(x)["logits"].numpy(), cam(x)["logits"].numpy(), rtol=1e-5, atol=1e-4
    )


def test_frozen_classifier_does_not_change_in_the_slt_step():
    config = _slt_config()
    config.method.classifier_train.epochs = 1
    model = train_lib.build_compiled_model(config, INFO)
    trainable = {id(v) for v in model.trainable_variables}
    branch = model.classifier_backbone.weights + model.classifier_fc.weights
    assert not trainable & {id(v) for v in branch}
    before = [v.numpy().copy() for v in branch]
    loc_before = model.cam_head.classifier.kernel.numpy().copy()
    reg_before = model.regressor_fc2.kernel.numpy().copy()
    x = {
        "image": _images(4),
        "label": np.array([0, 1, 2, 3], np.int32),
        "hierarchy": np.zeros((4, 0), np.int32),
    }
    for _ in range(2):
        model.train_on_batch(x, x["label"])
    for v, b in zip(branch, before):
        np.testing.assert_array_equal(v.numpy(), b, err_msg=v.path)
    # ... while localizer and regressor did train.
    assert np.abs(model.cam_head.classifier.kernel.numpy() - loc_before).max() > 0
    assert np.abs(model.regressor_fc2.kernel.numpy() - reg_before).max() > 0


def test_joint_classifier_still_trains_by_default():
    config = _slt_config()
    model = build_model(config, INFO)
    assert not model.classifier_frozen
    ids = {id(v) for v in model.trainable_variables}
    assert id(model.classifier_fc.kernel) in ids


def test_missing_file_names_it(tmp_path):
    missing = str(tmp_path / "nowhere")
    config = _slt_config(classifier_weights=missing)
    model = build_model(config, INFO)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        method_phases.prepare(model, config, INFO)


def test_weights_without_config_json_are_refused(tmp_path):
    cam = _cam_workdir(tmp_path / "cam")
    lone = tmp_path / "lone" / "x.weights.h5"
    lone.parent.mkdir()
    cam.save_weights(str(lone))
    config = _slt_config(classifier_weights=str(lone))
    with pytest.raises(FileNotFoundError, match="config.json"):
        method_phases.prepare(build_model(config, INFO), config, INFO)


def test_cam_with_conv_layers_is_refused_naming_conv_filters(tmp_path):
    _cam_workdir(tmp_path / "cam", conv_filters=(8,))
    config = _slt_config(classifier_weights=str(tmp_path / "cam"))
    with pytest.raises(ValueError, match=r"conv_filters=\(8,\)"):
        method_phases.prepare(build_model(config, INFO), config, INFO)


def test_other_class_count_names_the_variable_and_shapes(tmp_path):
    three = {"num_classes": 3, "image_size": SIZE}
    _cam_workdir(tmp_path / "cam", info=three)
    config = _slt_config(classifier_weights=str(tmp_path / "cam"))
    info = {"num_classes": 4, "image_size": SIZE}
    with pytest.raises(ValueError) as e:
        method_phases.prepare(build_model(config, info), config, info)
    text = str(e.value)
    assert "model.weights.h5" in text and "cam_head/classifier/kernel" in text
    assert "(1, 1, 128, 3)" in text and "(128, 4)" in text, text


def test_other_class_names_are_refused(tmp_path):
    _cam_workdir(tmp_path / "cam")
    config = _slt_config(classifier_weights=str(tmp_path / "cam"))
    info = dict(INFO, class_names=["a", "b", "x", "d"])
    with pytest.raises(ValueError, match="class 2 is 'c'.*'x'"):
        method_phases.prepare(build_model(config, info), config, info)


def test_other_backbone_is_refused_naming_the_field(tmp_path):
    _cam_workdir(tmp_path / "cam")
    path = tmp_path / "cam" / "config.json"
    payload = json.loads(path.read_text())
    payload["config"]["model"]["backbone"] = "vgg16"
    path.write_text(json.dumps(payload))
    config = _slt_config(classifier_weights=str(tmp_path / "cam"))
    with pytest.raises(ValueError, match="model.backbone='vgg16'.*'small_cnn'"):
        method_phases.prepare(build_model(config, INFO), config, INFO)


@pytest.mark.parametrize(
    "field", ["vgg_released_pools", "resnet_large_feature_map"]
)
def test_classifier_with_other_pools_or_strides_is_refused(tmp_path, field):
    """Both options change the feature maps the classifier was trained on
    (ACoL's released pools; wsolevaluation's 28x28 ResNet50)."""
    _cam_workdir(tmp_path / "cam")
    path = tmp_path / "cam" / "config.json"
    payload = json.loads(path.read_text())
    payload["config"]["model"][field] = True
    path.write_text(json.dumps(payload))
    config = _slt_config(classifier_weights=str(tmp_path / "cam"))
    with pytest.raises(ValueError, match=f"model.{field}=True"):
        method_phases.prepare(build_model(config, INFO), config, INFO)


def test_classifier_workdir_written_before_the_pool_fields_is_accepted(tmp_path):
    """A config.json without the newer model fields means their defaults."""
    _cam_workdir(tmp_path / "cam")
    path = tmp_path / "cam" / "config.json"
    payload = json.loads(path.read_text())
    for field in ("vgg_released_pools", "resnet_large_feature_map"):
        payload["config"]["model"].pop(field, None)
    path.write_text(json.dumps(payload))
    config = _slt_config(classifier_weights=str(tmp_path / "cam"))
    method_phases.prepare(build_model(config, INFO), config, INFO)


def test_corrupt_weights_file_names_it(tmp_path):
    _cam_workdir(tmp_path / "cam")
    weights = workdir_lib.final_weights_path(str(tmp_path / "cam"))
    with open(weights, "wb") as f:
        f.write(b"not an h5 file")
    config = _slt_config(classifier_weights=str(tmp_path / "cam"))
    with pytest.raises(ValueError, match=os.path.basename(weights)):
        method_phases.prepare(build_model(config, INFO), config, INFO)


def test_two_sources_or_joint_rates_with_a_frozen_classifier_are_refused():
    config = _slt_config(classifier_weights="/x")
    config.method.classifier_train.epochs = 2
    with pytest.raises(ValueError, match="one source"):
        build_model(config, INFO)
    config = _slt_config(classifier_weights="/x", classifier_lr_multiplier=5.0)
    with pytest.raises(ValueError, match="classifier_lr_multiplier"):
        build_model(config, INFO)


def test_unknown_schedule_field_and_bad_epochs_are_refused():
    from wsol_keras.models import slt

    with pytest.raises(ValueError, match="classifier_train.epochz"):
        slt.resolve_classifier_train({"epochz": 3})
    with pytest.raises(ValueError, match="classifier_train.epochs=-1"):
        slt.resolve_classifier_train({"epochs": -1})
    config = _slt_config()
    config.method.classifier_train.epochz = 3  # a typo in a config file
    with pytest.raises(ValueError, match="classifier_train.epochz"):
        build_model(config, INFO)


def test_phase_config_replaces_the_train_fields():
    config = _slt_config()
    assert slt_classifier_phase.phase_config(config) is None  # epochs 0: joint
    config.method.classifier_train.epochs = 3
    config.method.classifier_train.learning_rate = 0.05
    config.method.classifier_train.lr_decay_at_epochs = (2,)
    phase = slt_classifier_phase.phase_config(config)
    assert phase.method.name == "cam" and tuple(phase.method.conv_filters) == ()
    assert phase.train.epochs == 3 and phase.train.learning_rate == 0.05
    assert tuple(phase.train.lr_decay_at_epochs) == (2,)
    assert phase.train.optimizer == config.train.optimizer
    assert phase.data.to_dict() == config.data.to_dict()
    assert config.train.epochs == 1  # the SLT config is untouched


# -- classifier_head="vgg_fc": VGG16's own fc6 / fc7 (SLT-Net Sec. 4.2) ----------


def _torch_adaptive_avg_pool(x, out=7):
    """[B, H, W, C] -> [B, out, out, C] with torch AdaptiveAvgPool2d's bins,
    written as loops (start floor(i*H/out), end ceil((i+1)*H/out))."""
    b, h, w, c = x.shape
    y = np.zeros((b, out, out, c), np.float64)
    for i in range(out):
        hs, he = (i * h) // out, -(-((i + 1) * h) // out)
        for j in range(out):
            ws, we = (j * w) // out, -(-((j + 1) * w) // out)
            y[:, i, j] = x[:, hs:he, ws:we].mean(axis=(1, 2))
    return y


def test_vgg_fc_head_equals_numpy_vgg16_top():
    """block5_pool (2x2 max) -> adaptive 7x7 avg pool -> flatten (channels
    last) -> fc1 ReLU -> fc2 ReLU -> Dense(C), computed independently; a
    4x4 map (pooled to 2x2, bins repeated) and an 14x14 map (pooled to 7x7,
    the identity 224x224 case)."""
    from wsol_keras.layers.vgg_top import VGG16Top

    rng = np.random.default_rng(0)
    for size in (4, 14):
        top = VGG16Top(units=6)
        feats = rng.standard_normal((2, size, size, 3)).astype(np.float32)
        got = np.asarray(top(feats, training=False))
        x = feats.reshape(2, size // 2, 2, size // 2, 2, 3).max(axis=(2, 4))
        x = _torch_adaptive_avg_pool(x).reshape(2, -1)
        for fc in (top.fc1, top.fc2):
            x = np.maximum(x @ fc.kernel.numpy() + fc.bias.numpy(), 0.0)
        np.testing.assert_allclose(got, x, rtol=1e-5, atol=1e-5)
        assert top.fc1.kernel.shape == (7 * 7 * 3, 6)
    # Dropout 0.5 after each ReLU in training: about half the units ReLU keeps
    # are zeroed (a 400-wide top: 800 values, so the gap is far from noise;
    # 12 values made it flaky).
    wide = VGG16Top(units=400)
    kept = (np.asarray(wide(feats, training=False)) == 0).mean()
    dropped = (np.asarray(wide(feats, training=True)) == 0).mean()
    assert dropped > kept + 0.1
    with pytest.raises(ValueError, match=r"1x1.*config.data.image_size"):
        VGG16Top().build((None, 1, 1, 8))


def test_frozen_vgg_fc_classifier_has_no_dropout_in_training(tmp_path):
    """Phase 2: the classifier from its own run is frozen and infers, so its
    training-mode logits are its inference logits (no dropout in fc6 / fc7)."""
    config = _slt_config(classifier_head="vgg_fc", classifier_train={"epochs": 1})
    slt = build_model(config, INFO)
    x = _images()
    np.testing.assert_allclose(
        slt.classify(x, training=True).numpy(),
        slt.classify(x, training=False).numpy(),
        rtol=1e-6,
    )


def test_vgg_fc_head_takes_keras_vgg16_top_weights_by_name():
    """fc1 / fc2 of keras.applications.VGG16(include_top=True) -- where its
    ImageNet weights live -- fit this head on VGG16's 512-channel conv5_3 at
    224 (14x14) and are copied into it."""
    import keras

    from wsol_keras.layers.vgg_top import VGG16Top, transfer_vgg16_top

    vgg = keras.applications.VGG16(include_top=True, weights=None)
    top = VGG16Top()
    top.build((None, 14, 14, 512))
    transfer_vgg16_top(top, vgg)
    for name in ("fc1", "fc2"):
        for a, b in zip(vgg.get_layer(name).weights, getattr(top, name).weights):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    small = VGG16Top(units=8)
    small.build((None, 14, 14, 512))
    with pytest.raises(ValueError, match="fc1/kernel has shape"):
        transfer_vgg16_top(small, vgg)


def test_vgg_fc_classifier_copy_and_head_mismatch(tmp_path):
    """An slt_classifier workdir (VGG16 fc head) gives the SLT vgg_fc
    classifier its logits; a GAP (CAM) source for a vgg_fc SLT is refused."""
    config = _slt_config(classifier_head="vgg_fc")
    src_config = slt_classifier_phase.phase_config(
        _slt_config(classifier_head="vgg_fc", classifier_train={"epochs": 1})
    )
    assert src_config.method.name == "slt_classifier"
    src = build_model(src_config, INFO)
    _perturb(src)
    workdir_lib.write_config(str(tmp_path / "cls"), src_config, INFO)
    workdir_lib.save_weights_atomic(
        src, workdir_lib.final_weights_path(str(tmp_path / "cls"))
    )
    config.method.classifier_weights = str(tmp_path / "cls")
    slt = build_model(config, INFO)
    x = _images()
    want = src(x)["logits"].numpy()
    assert np.abs(slt(x)["logits"].numpy() - want).max() > 1e-2
    method_phases.prepare(slt, config, INFO)
    np.testing.assert_allclose(slt(x)["logits"].numpy(), want, rtol=1e-5, atol=1e-4)

    _cam_workdir(tmp_path / "cam")
    config.method.classifier_weights = str(tmp_path / "cam")
    other = build_model(config, INFO)
    with pytest.raises(ValueError, match="head is 'gap'.*classifier_head='vgg_fc'"):
        method_phases.prepare(other, config, INFO)
    with pytest.raises(ValueError, match="config.method.classifier_head='fc6'"):
        build_model(_slt_config(classifier_head="fc6"), INFO)
