"""The papers' optimizer (torch SGD, coupled L2, per-group rates) against hand arithmetic.

Expected values follow `torch.optim.SGD.step` as documented by PyTorch,
written out here in numpy on a few numbers:
    d = g + wd * w; buf = mu * buf + d; d = d + mu * buf (nesterov) or buf;
    w -= lr_group * d
with the released groups of `get_finetune_optimizer` (xiaomengyc/ACoL,
exper/my_optim.py): weights lr, biases 2 lr, new weights 10 lr, new biases 20 lr.
"""

import keras
import numpy as np
import pytest

from wsol_keras.configs import synthetic_cam
from wsol_keras.models.registry import build_model
from wsol_keras.training import optimizers
from wsol_keras.training import trainer
def _two_steps_by_hand(w, grads, lr, mult, wd, mu, nesterov):
    w = np.array(w, np.float64)
    buf = np.zeros_like(w)
    for g in grads:
        d = np.asarray(g, np.float64) + wd * w
        buf = mu * buf + d
        step = d + mu * buf if nesterov else buf
        w = w - lr * mult * step
    return w


@pytest.mark.parametrize("nesterov", [False, True])
def test_coupled_sgd_two_steps_match_torch_sgd_arithmetic(nesterov):
    w0 = np.array([1.0, -2.0, 0.5], np.float32)
    b0 = np.array([0.3], np.float32)
    grads_w = [np.array([0.1, 0.2, -0.4], np.float32), np.array([-0.3, 0.0, 0.2], np.float32)]
    grads_b = [np.array([1.0], np.float32), np.array([0.5], np.float32)]
    w = keras.Variable(w0, name="kernel")
    b = keras.Variable(b0, name="bias")
    opt = optimizers.CoupledSGD(
        0.1,
        momentum=0.9,
        nesterov=nesterov,
        l2=0.05,
        lr_multipliers={w.path: 10.0, b.path: 20.0},
    )
    for gw, gb in zip(grads_w, grads_b):
        opt.apply_gradients([(gw, w), (gb, b)])
    # Step 1 by hand for w[0] without nesterov: d = 0.1 + 0.05 * 1 = 0.15,
    # w = 1 - 0.1 * 10 * 0.15 = 0.85.
    expected_w = _two_steps_by_hand(w0, grads_w, 0.1, 10.0, 0.05, 0.9, nesterov)
    expected_b = _two_steps_by_hand(b0, grads_b, 0.1, 20.0, 0.05, 0.9, nesterov)
    np.testing.assert_allclose(w.numpy(), expected_w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(b.numpy(), expected_b, rtol=1e-5, atol=1e-6)


def test_coupled_sgd_first_step_literal_numbers():
    # w = 1, g = 0.1, wd = 0.05, lr = 0.1, multiplier 10: d = 0.15, w = 0.85.
    # Keras' decoupled SGD would give 1 - 0.1*10*0.1 - 0.1*0.05 = 0.895.
    w = keras.Variable(np.array([1.0], np.float32), name="kernel")
    opt = optimizers.CoupledSGD(0.1, momentum=0.9, l2=0.05, lr_multipliers={w.path: 10.0})
    opt.apply_gradients([(np.array([0.1], np.float32), w)])
    np.testing.assert_allclose(w.numpy(), [0.85], rtol=1e-6)


def test_lr_drop_takes_effect_at_once_as_in_torch():
    # torch scales the whole buffer by the current lr; Keras' SGD keeps
    # lr * g in its buffer, so after a drop it still moves by the old rate.
    w0 = np.array([0.0], np.float32)
    grads = [np.array([1.0], np.float32)] * 2
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay([0], [1.0, 0.1])  # step 0: 1, then 0.1
    w = keras.Variable(w0, name="kernel")
    opt = optimizers.CoupledSGD(schedule, momentum=0.9)
    for g in grads:
        opt.apply_gradients([(g, w)])
    # step 1: buf = 1, w = -1; step 2: buf = 1.9, w = -1 - 0.1 * 1.9 = -1.19
    np.testing.assert_allclose(w.numpy(), [-1.19], rtol=1e-6)


def _tiny_config(optimizer):
    config = synthetic_cam.get_config("smoke")
    config.data.image_size = 32
    config.train.optimizer = optimizer
    config.train.learning_rate = 0.01
    config.train.lr_schedule = "constant"
    config.train.momentum = 0.9
    config.train.weight_decay = 5e-4
    config.train.head_lr_multiplier = 10.0
    config.train.bias_lr_multiplier = 2.0
    return config


def _tiny_model(config):
    info = {"num_classes": 3, "hierarchy_sizes": (), "image_size": 32}
    return trainer.build_compiled_model(config, info)


def test_variable_groups_follow_get_finetune_optimizer():
    model = _tiny_model(_tiny_config("sgd_l2"))
    mult = model.optimizer.multiplier_of
    backbone = {v.path for v in model.backbone.trainable_variables}
    seen = set()
    for v in model.trainable_variables:
        # torch names BatchNorm's shift "bias" too (Keras: beta).
        is_bias = v.path.endswith("/bias") or v.path.endswith("/beta")
        new = v.path not in backbone
        expected = (10.0 if new else 1.0) * (2.0 if is_bias else 1.0)
        assert mult(v) == expected, v.path
        seen.add(expected)
    assert seen == {1.0, 2.0, 10.0, 20.0}


def test_train_step_applies_group_rate_to_gradient_and_decay_once():
    """One fit step == w - lr * group * (g + wd * w): no extra gradient multiplier."""
    import tensorflow as tf

    # float64: the first conv's weight gradient sums 4096 terms that largely
    # cancel, and in float32 the sum's last digits depend on the CPU kernels'
    # thread schedule (the eager tape and the compiled step then differ by up
    # to 2e-5 under load); in float64 the two agree far below the tolerance.
    keras.config.set_dtype_policy("float64")  # tests/conftest.py resets it
    config = _tiny_config("sgd_l2")
    model = _tiny_model(config)
    rng = np.random.default_rng(0)
    x = {
        "image": rng.uniform(0, 255, (4, 32, 32, 3)),
        "label": np.array([0, 1, 2, 0], np.int32),
        "hierarchy": np.zeros((4, 0), np.int32),
    }
    y = x["label"]
    # The backbone computes in float64 (the head keeps its float32 logits).
    assert {v.dtype for v in model.backbone.trainable_variables} == {"float64"}
    before = [v.numpy().astype(np.float64) for v in model.trainable_variables]
    with tf.GradientTape() as tape:
        loss = model.compute_loss(x, y, model(x, training=True), training=True)
    grads = [g.numpy() for g in tape.gradient(loss, model.trainable_variables)]
    model.train_on_batch(x, y)
    mult = model.optimizer.multiplier_of
    for v, w, g in zip(model.trainable_variables, before, grads):
        expected = w - 0.01 * mult(v) * (g + 5e-4 * w)
        np.testing.assert_allclose(v.numpy(), expected, rtol=1e-4, atol=1e-6, err_msg=v.path)


def test_sgd_l2_without_model_and_unknown_name_raise():
    config = _tiny_config("sgd_l2")
    with pytest.raises(ValueError, match="sgd_l2"):
        optimizers.build_optimizer(config.train, 0.1, None)
    config.train.optimizer = "sgdd"
    with pytest.raises(ValueError, match="sgdd"):
        optimizers.build_optimizer(config.train, 0.1, None)


def test_path_keyed_groups_naming_two_variables_are_refused():
    a = keras.Variable(np.ones(2, np.float32), name="kernel")
    b = keras.Variable(np.ones(2, np.float32), name="kernel")
    assert a.path == b.path
    opt = optimizers.CoupledSGD(0.1, lr_multipliers={a.path: 10.0})
    with pytest.raises(ValueError, match="'kernel'.*same layer names"):
        opt.build([a, b])
    by_identity = optimizers.CoupledSGD(0.1, lr_multipliers=[(b, 10.0)])
    by_identity.build([a, b])
    assert (by_identity.multiplier_of(a), by_identity.multiplier_of(b)) == (1.0, 10.0)
    clone = optimizers.CoupledSGD.from_config(by_identity.get_config())
    clone.build([a, b])
    assert (clone.multiplier_of(a), clone.multiplier_of(b)) == (1.0, 10.0)


def test_coupled_sgd_round_trips_through_config():
    opt = optimizers.CoupledSGD(0.1, momentum=0.9, nesterov=True, l2=5e-4, lr_multipliers={"a/bias": 20.0})
    clone = optimizers.CoupledSGD.from_config(opt.get_config())
    assert (clone.momentum, clone.nesterov, clone.l2, clone.lr_multipliers) == (
        0.9,
        True,
        5e-4,
        {"a/bias": 20.0},
    )


# Released optimizers, read from the papers' code (not from the configs):
# (base lr, head x, bias x, nesterov) with torch SGD momentum 0.9, wd 5e-4.
RELEASED_OPTIMIZERS = {
    # xiaomengyc/ACoL exper/my_optim.py get_finetune_optimizer, train_vgg_cub.sh
    "cub_vgg16_acol": (1e-4, 10.0, 2.0, True),
    # xuehaolan/DANet exper/train_DA.py get_model: its own optim.SGD with the
    # four groups lr, 2 lr, 10 lr, 20 lr, momentum 0.9, nesterov=True
    # (my_optim.get_finetune_optimizer, without nesterov, is not called)
    "cub_vgg16_danet": (1e-3, 10.0, 2.0, True),
    # yeezhu/SPN.pytorch engine.py: SGD(model.parameters(), lr=0.01, ...)
    "cub_vgg16_spn": (1e-2, 1.0, 1.0, False),
    # clovaai/wsolevaluation main.py _set_optimizer: 2 groups, nesterov
    "cub_vgg16_cam": (1e-3, 10.0, 1.0, True),
}


@pytest.mark.parametrize("name", sorted(RELEASED_OPTIMIZERS))
def test_cub_configs_use_released_optimizer(name):
    import importlib

    t = importlib.import_module(f"wsol_keras.configs.{name}").get_config().train
    lr, head, bias, nesterov = RELEASED_OPTIMIZERS[name]
    assert t.optimizer == "sgd_l2"
    assert (t.momentum, t.weight_decay) == (0.9, 5e-4)
    assert t.learning_rate == pytest.approx(lr)
    assert (t.head_lr_multiplier, t.bias_lr_multiplier, t.nesterov) == (head, bias, nesterov)


def test_l2_exclude_leaves_biases_undecayed():
    # DGL's release: L2 on '.*/W' only. Bias: w = 1 - 0.1 * 2 * 0.1 = 0.98
    # (with decay it would be 1 - 0.1 * 2 * (0.1 + 0.05) = 0.97).
    w = keras.Variable(np.array([1.0], np.float32), name="kernel")
    b = keras.Variable(np.array([1.0], np.float32), name="bias")
    opt = optimizers.CoupledSGD(
        0.1, momentum=0.9, l2=0.05, lr_multipliers={b.path: 2.0}, l2_exclude=[b.path]
    )
    g = np.array([0.1], np.float32)
    opt.apply_gradients([(g, w), (g, b)])
    np.testing.assert_allclose(w.numpy(), [1 - 0.1 * 0.15], rtol=1e-6)
    np.testing.assert_allclose(b.numpy(), [0.98], rtol=1e-6)


def test_dgl_cub_config_is_the_papers_and_its_layer_exists():
    """DGL Sec. 4.1: batch 32, lr 0.002 (10x added layers), 125 epochs, /10 at
    75 and 100; conv4_2 (Sec. 4.3); released dgl_vgg.py: Nesterov, L2 on W only."""
    from wsol_keras.configs import cub_vgg16_dgl
    from wsol_keras.localization import dual_gradient
    from wsol_keras.models import cam

    c = cub_vgg16_dgl.get_config()
    t = c.train
    assert (t.batch_size, t.epochs, t.learning_rate) == (32, 125, 0.002)
    assert tuple(t.lr_decay_at_epochs) == (75, 100) and t.lr_decay_factor == 0.1
    assert (t.optimizer, t.nesterov, t.head_lr_multiplier) == ("sgd_l2", True, 10.0)
    assert (t.bias_lr_multiplier, t.decay_biases) == (2.0, False)
    assert tuple(c.method.conv_filters) == (1024,) and c.method.name == "cam"
    assert c.eval.map_method == "dgl"
    # The layer path resolves to VGG16's conv4_2 in the CAM model it trains.
    c.model.weights = None
    model = build_model(c, {"num_classes": 3, "image_size": 64})
    layer = dual_gradient.resolve_layer(model, c.eval.dgl_layer)
    assert layer.name == "block4_conv2"
    # The step schedule decays at 75 and 100 epochs (2 steps per epoch here).
    fn = trainer.make_optimizer(c, steps_per_epoch=2, model=model)._learning_rate
    np.testing.assert_allclose(
        [float(fn(s)) for s in (0, 149, 151, 199, 201, 249)],
        [2e-3, 2e-3, 2e-4, 2e-4, 2e-5, 2e-5],
        rtol=1e-5,
    )


def test_step_schedule_drops_on_the_first_step_of_the_epoch_as_torch_multisteplr():
    # torch: MultiStepLR(milestones=[1, 2], gamma=0.1), scheduler.step() after
    # each epoch: every step of epoch e runs at lr * 0.1 ** #{m <= e}.  With 2
    # steps per epoch, steps 0-1 at 1.0, steps 2-3 at 0.1, steps 4-5 at 0.01
    # (Keras calls the schedule with the number of steps already taken).
    c = synthetic_cam.get_config("smoke")
    c.train.learning_rate = 1.0
    c.train.epochs = 3
    c.train.lr_schedule = "step"
    c.train.lr_decay_at_epochs = (1, 2)
    fn = trainer.make_optimizer(c, steps_per_epoch=2)._learning_rate
    np.testing.assert_allclose(
        [float(fn(s)) for s in range(6)], [1.0, 1.0, 0.1, 0.1, 0.01, 0.01], rtol=1e-6
    )
    # Every-N form (lr_decay_epochs): the same first-step drop.
    c.train.lr_decay_at_epochs = ()
    c.train.lr_decay_epochs = 1
    fn = trainer.make_optimizer(c, steps_per_epoch=2)._learning_rate
    np.testing.assert_allclose(
        [float(fn(s)) for s in range(6)], [1.0, 1.0, 0.1, 0.1, 0.01, 0.01], rtol=1e-6
    )
    # The third update (step 2, epoch 1) moves w by the new rate: SGD with
    # momentum 0, g = 1: w = -(1 + 1 + 0.1).
    c.train.optimizer = "sgd"
    c.train.momentum = 0.0
    c.train.weight_decay = 0.0
    opt = trainer.make_optimizer(c, steps_per_epoch=2)
    w = keras.Variable(np.zeros(1, np.float32), name="kernel")
    for _ in range(3):
        opt.apply_gradients([(np.ones(1, np.float32), w)])
    np.testing.assert_allclose(w.numpy(), [-2.1], rtol=1e-6)


def _ilsvrc_resnet50_model(optimizer="sgd_l2"):
    from wsol_keras.configs import ilsvrc_resnet50_cam

    config = ilsvrc_resnet50_cam.get_config("smoke")
    config.model.weights = None
    config.data.image_size = 64
    config.train.optimizer = optimizer
    info = {"num_classes": 3, "hierarchy_sizes": (), "image_size": 64}
    return trainer.build_compiled_model(config, info)


def test_ilsvrc_resnet50_trains_conv5_with_the_head_as_wsolevaluation():
    # wsolevaluation main.py Trainer._set_optimizer: names containing 'layer4.'
    # or 'fc.' at lr * lr_classifier_ratio (10), the rest (conv1, bn1,
    # layer1-3) at lr.  Keras' layer4 is the conv5 stage.
    model = _ilsvrc_resnet50_model()
    assert tuple(model.backbone.output.shape[1:3]) == (8, 8)  # 28x28 at 224
    by_path = {v.path: model.optimizer.multiplier_of(v) for v in model.trainable_variables}
    mult = by_path.__getitem__
    backbone = {v.path for v in model.backbone.trainable_variables}
    conv5 = [p for p in backbone if p.startswith("conv5_")]
    # conv5: 3 bottlenecks x 3 convs + 1 projection shortcut, each conv with a
    # kernel and bias (Keras v1) and a BatchNorm gamma and beta.
    assert len(conv5) == 10 * 4
    head = [v.path for v in model.trainable_variables if v.path not in backbone]
    assert head  # the CAM classifier
    for path in conv5 + head:
        assert mult(path) == 10.0, path
    for path in backbone - set(conv5):
        assert path.startswith(("conv1_", "conv2_", "conv3_", "conv4_")), path
        assert mult(path) == 1.0, path


def test_head_lr_backbone_prefixes_scale_gradients_for_keras_sgd():
    config = _tiny_config("sgd")
    config.train.head_lr_backbone_prefixes = ("stage3_",)
    model = _tiny_model(config)
    by_path = dict(
        zip([v.path for v in model.trainable_variables], model._gradient_multipliers())
    )
    backbone = {v.path for v in model.backbone.trainable_variables}
    # small_cnn: stage3 has 3 convs (kernel, no bias) and 3 BatchNorms.
    assert sorted(p for p in backbone if by_path[p] == 10.0) == sorted(
        [f"stage3_conv{i}/kernel" for i in (1, 2, 3)]
        + [f"stage3_bn{i}/{w}" for i in (1, 2, 3) for w in ("gamma", "beta")]
    )
    assert all(by_path[p] == 1.0 for p in backbone if not p.startswith("stage3_"))
    assert all(by_path[p] == 10.0 for p in by_path if p not in backbone)


@pytest.mark.parametrize(
    "prefixes,match",
    [
        (("layer4.",), "'layer4.' names no layer"),
        ("stage3_", "not the string 'stage3_'"),
    ],
)
def test_head_lr_backbone_prefixes_that_match_nothing_raise(prefixes, match):
    from wsol_keras.models.backbones import build_backbone
    from wsol_keras.models.cam import CAMModel

    backbone = build_backbone("small_cnn", 32, weights=None)
    with pytest.raises(ValueError, match=match):
        CAMModel(backbone, 3, head_lr_backbone_prefixes=prefixes)


def test_head_lr_backbone_prefixes_refused_by_a_model_with_its_own_groups():
    from wsol_keras.configs import synthetic_slt

    config = synthetic_slt.get_config("smoke")
    config.data.image_size = 32
    config.train.head_lr_backbone_prefixes = ("stage3_",)
    with pytest.raises(ValueError, match="SLTModel sets its own learning-rate groups"):
        build_model(config, {"num_classes": 3, "hierarchy_sizes": (), "image_size": 32})
