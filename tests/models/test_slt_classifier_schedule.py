"""SLT-Net's classifier on its own learning rate (SLT-Net Sec. 3.1, Fig. 2b:
"the classifier is trained independently"), checked on one SGD step."""

import keras
import numpy as np
import tensorflow as tf

from wsol_keras.configs import cub_vgg16_slt, synthetic_slt
from wsol_keras.models.registry import build_model
from wsol_keras.models import slt


def tiny_slt(classifier_lr=5.0, classifier_head=10.0):
    config = synthetic_slt.get_config("smoke")
    config.data.image_size = 32
    config.train.head_lr_multiplier = 1.0
    config.method.classifier_lr_multiplier = classifier_lr
    config.method.classifier_head_lr_multiplier = classifier_head
    model = build_model(config, {"num_classes": 4, "image_size": 32})
    model.compile(optimizer=keras.optimizers.SGD(0.01))
    return model


def test_classifier_groups_get_their_own_rate():
    model = tiny_slt()
    x = np.zeros((2, 32, 32, 3), np.float32)
    model({"image": x, "label": np.zeros((2,), np.int32)}, training=False)
    mult = dict(zip([v.path for v in model.trainable_variables], model._gradient_multipliers()))
    cls_backbone = {v.path for v in model.classifier_backbone.trainable_variables}
    cls_fc = {v.path for v in model.classifier_fc.trainable_variables}
    for path, m in mult.items():
        expected = 5.0 if path in cls_backbone else 50.0 if path in cls_fc else 1.0
        assert m == expected, path


def test_one_sgd_step_moves_the_classifier_at_its_rate():
    """classifier_fc: w - 0.01 * 50 * g; localizer head: w - 0.01 * g (fails on
    the old train_step, which skipped all multipliers when head_lr was 1)."""
    model = tiny_slt()
    rng = np.random.default_rng(0)
    x = {
        "image": rng.uniform(0, 255, (2, 32, 32, 3)).astype(np.float32),
        "label": np.array([0, 3], np.int32),
        "hierarchy": np.zeros((2, 0), np.int32),
    }
    model(x, training=False)
    fc = model.classifier_fc.kernel
    w0 = fc.numpy().astype(np.float64)
    with tf.GradientTape() as tape:
        logits = model.classify(x["image"], training=True)
        loss = keras.ops.mean(
            keras.losses.sparse_categorical_crossentropy(x["label"], logits, from_logits=True)
        )
    g = tape.gradient(loss, fc).numpy()
    model.train_on_batch(x, x["label"])
    np.testing.assert_allclose(fc.numpy(), w0 - 0.01 * 50.0 * g, rtol=1e-4, atol=1e-7)


def test_cub_config_trains_the_classifier_on_its_own_cam_vgg_schedule():
    """Phase 1 (Sec. 3.1, Fig. 2b) on the released CUB CAM-VGG16 schedule of
    xuehaolan/DANet (scripts/train_CAM_cub.sh: --epoch=100 --lr=0.001
    --batch_size=30 --decay_point=80; exper/train_CAM.py get_model: SGD
    momentum 0.9, nesterov=True, groups lr, 2 lr, 10 lr, 20 lr).  The
    localizer (Sec. 4.1): lr 0.0002, no 10x, no bias rate."""
    from wsol_keras.models import slt_classifier_phase

    c = cub_vgg16_slt.get_config()
    assert c.train.head_lr_multiplier == 1.0  # the localizer's "new optimization"
    assert c.train.bias_lr_multiplier == 1.0  # no bias group stated
    assert (c.train.learning_rate, c.train.epochs) == (0.0002, 4)
    phase = slt_classifier_phase.phase_config(c)
    released = {
        "epochs": 100,
        "batch_size": 30,
        "learning_rate": 0.001,
        "head_lr_multiplier": 10.0,
        "bias_lr_multiplier": 2.0,
        "nesterov": True,
        "momentum": 0.9,
        "weight_decay": 5e-4,
        "optimizer": "sgd_l2",
    }
    for field, value in released.items():
        assert phase.train[field] == value, field
    # x0.1 at epoch 80 only.
    decays = tuple(phase.train.lr_decay_at_epochs) or tuple(
        range(phase.train.lr_decay_epochs, phase.train.epochs, phase.train.lr_decay_epochs)
    )
    assert decays == (80,) and phase.train.lr_decay_factor == 0.1
    assert phase.model.to_dict() == c.model.to_dict()
    assert phase.train.crop_scale == c.train.crop_scale  # 224 from 256, Sec. 4.1
    # Sec. 4.2: VGG16 with its output replaced -- its own fc6 / fc7, in both phases.
    assert c.method.classifier_head == "vgg_fc"
    assert (phase.method.name, phase.method.head) == ("slt_classifier", "vgg_fc")
    # The documented joint fallback builds (rates only matter when joint).
    c.method.classifier_train.epochs = 0
    c.method.classifier_lr_multiplier = 5.0
    c.method.classifier_head_lr_multiplier = 10.0
    assert slt_classifier_phase.phase_config(c) is None


def test_phase_one_vgg_fc_rates_new_dense_only_gets_the_head_multiplier():
    """fc6 / fc7 are pretrained (ImageNet, like the backbone): base rate;
    only the new Dense(C) gets head_lr_multiplier."""
    from wsol_keras.models import slt_classifier_phase
    config = synthetic_slt.get_config("smoke")
    config.method.classifier_head = "vgg_fc"
    config.method.classifier_train.epochs = 1
    config.method.classifier_train.head_lr_multiplier = 7.0
    phase = slt_classifier_phase.phase_config(config)
    model = build_model(phase, {"num_classes": 4, "image_size": 32})
    got = dict(
        zip((v.path for v in model.trainable_variables), model._gradient_multipliers())
    )
    new = {v.path for v in model.fc.trainable_variables}
    assert new and all(got[p] == 7.0 for p in new)
    fc67 = {v.path for v in model.top.trainable_variables}
    assert len(fc67) == 4 and all(got[p] == 1.0 for p in fc67)
    assert all(m == 1.0 for p, m in got.items() if p not in new)
