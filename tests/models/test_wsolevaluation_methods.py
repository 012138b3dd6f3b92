"""ADL, HaS and CutMix as `config.method.name` values (clovaai/wsolevaluation's
other training methods): built from the registry, each method's piece where
the papers and the release put it, identity to CAM at inference."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from wsol_keras.configs import synthetic_cam
from wsol_keras import data as data_lib
from wsol_keras.layers import AttentionDropout
from wsol_keras.models.registry import build_model, default_method_config
from wsol_keras.training import trainer

SIZE = 32
# The smoke synthetic source's 8 classes (the CutMix tests read its batches).
INFO = {"num_classes": 8, "class_names": list("abcdefgh"), "hierarchy_sizes": [4],
        "ancestors": [[i // 2] for i in range(8)], "image_size": SIZE}


def _config(method, backbone="small_cnn", **fields):
    config = synthetic_cam.get_config("smoke")
    config.data.image_size = SIZE
    config.model.backbone = backbone
    config.method = default_method_config(method)
    for k, v in fields.items():
        config.method[k] = v
    return config


def _adl_after(model):
    """{adl layer name: name of the layer whose output it reads}."""
    extractor = [l for l in model.backbone.layers if isinstance(l, keras.Model)][0]
    out = {}
    for layer in extractor.layers:
        if isinstance(layer, AttentionDropout):
            tensor = layer._inbound_nodes[0].input_tensors[0]
            out[layer.name] = tensor._keras_history.operation.name
    return out


@pytest.mark.parametrize(
    "backbone,expected",
    [
        # wsolevaluation wsol/vgg.py configs_dict 'adl' '14x14'.
        ("vgg16", {"block3_pool", "block4_conv3", "block5_conv3"}),
        # wsolevaluation wsol/resnet.py _ADL_POSITION [[], [], [], [0], [0, 2]].
        ("resnet50", {"conv4_block1_out", "conv5_block1_out", "conv5_block3_out"}),
        ("small_cnn", {"stage2_pool", "stage3_relu3"}),
    ],
)
def test_adl_sits_after_the_released_positions(backbone, expected):
    model = build_model(_config("adl", backbone), INFO)
    after = _adl_after(model)
    assert set(after.values()) == expected
    assert all(name == f"{src}_adl" for name, src in after.items())
    layers = [l for l in model.backbone.layers if isinstance(l, keras.Model)][0].layers
    adls = [l for l in layers if isinstance(l, AttentionDropout)]
    assert {(l.drop_rate, l.drop_threshold) for l in adls} == {(0.75, 0.9)}


def test_adl_is_cam_at_inference_and_changes_training_features():
    x = np.random.default_rng(0).uniform(0, 255, (2, SIZE, SIZE, 3)).astype("float32")
    adl = build_model(_config("adl", adl_drop_rate=1.0, adl_drop_threshold=0.5), INFO)
    cam = build_model(_config("cam"), INFO)
    cam.set_weights(adl.get_weights())  # ADL adds no weights
    assert len(adl.weights) == len(cam.weights)
    np.testing.assert_allclose(
        adl(x, training=False)["logits"], cam(x, training=False)["logits"], rtol=1e-5
    )
    # Training mode (BN uses batch statistics in both): the drop masks change it.
    assert not np.allclose(adl(x, training=True)["logits"], cam(x, training=True)["logits"])


def test_adl_unknown_layer_names_the_field():
    with pytest.raises(ValueError, match=r"adl_layers.*no_such_layer"):
        build_model(_config("adl", adl_layers=("no_such_layer",)), INFO)


def test_has_hides_in_training_only():
    x = np.random.default_rng(1).uniform(0, 255, (2, SIZE, SIZE, 3)).astype("float32")
    has = build_model(_config("has", patch_sizes=(8,), hide_prob=1.0), INFO)
    cam = build_model(_config("cam"), INFO)
    cam.set_weights(has.get_weights())
    np.testing.assert_allclose(
        has(x, training=False)["logits"], cam(x, training=False)["logits"], rtol=1e-5
    )
    # hide_prob 1: every pixel is the fill, i.e. the model sees the mean image.
    mean_image = np.broadcast_to(
        np.asarray(has.hide.fill_value, "float32"), x.shape
    ).copy()
    np.testing.assert_allclose(
        has(x, training=True)["logits"], cam(mean_image, training=True)["logits"],
        rtol=1e-5, atol=1e-6,
    )


def _stream(config, model, skip=0):
    source = data_lib.get_source(config.data)
    return trainer.make_train_dataset(
        source, config, 4, skip_batches=skip, batch_transform=model.train_batch_transform()
    )


def test_cutmix_batches_carry_mixed_labels_and_resume_exactly():
    config = _config("cutmix")
    model = build_model(config, INFO)
    batches = list(_stream(config, model).take(3))
    x, y = batches[2]
    assert set(x) >= {"image", "label", "label_b", "mix_weight"}
    np.testing.assert_array_equal(y.numpy(), x["label"].numpy())
    assert x["mix_weight"].shape == (4,)
    assert np.all((x["mix_weight"].numpy() >= 0) & (x["mix_weight"].numpy() <= 1))
    # A run resumed at batch 2 mixes batch 2 as the uninterrupted run did.
    x2, _ = next(iter(_stream(config, model, skip=2)))
    np.testing.assert_array_equal(x2["image"].numpy(), x["image"].numpy())
    np.testing.assert_array_equal(x2["mix_weight"].numpy(), x["mix_weight"].numpy())


def test_cutmix_loss_is_the_lam_weighted_ce_and_a_step_trains():
    config = _config("cutmix")
    model = trainer.build_compiled_model(config, INFO)
    x, y = next(iter(_stream(config, model)))
    out = model(x, training=False)
    logits = out["logits"].numpy().astype("float64")
    logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    lam = x["mix_weight"].numpy()
    idx = np.arange(len(lam))
    expected = np.mean(
        -lam * logp[idx, x["label"].numpy()] - (1 - lam) * logp[idx, x["label_b"].numpy()]
    )
    got = float(model.loss_terms(x, out)["ce"])
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    plain = {k: x[k] for k in ("image", "label", "hierarchy")}
    expected_plain = np.mean(-logp[idx, x["label"].numpy()])
    np.testing.assert_allclose(float(model.loss_terms(plain, out)["ce"]), expected_plain, rtol=1e-5)
    logs = model.train_on_batch(x, y, return_dict=True)
    assert np.isfinite(logs["loss"])
