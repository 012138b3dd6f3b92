"""Gradient maps (DGL Eq. 5/8, Grad-CAM) at the cost of one forward pass.

`Localizer` takes the model's outputs (logits, class maps, boxes) from the
forward pass that `DualGradient` records for its activations and gradients
(Tan et al., "Dual-Gradients Localization Framework for Weakly Supervised
Object Localization", ACM MM 2020, Sec. 3.3-3.5). The expected values are the
two-pass computation written out here: the model run on its own for the
outputs, then a separate `DualGradient` call for the maps.
"""

import collections

import keras
import numpy as np
import pytest
import tensorflow as tf

from wsol_keras.configs import base as config_base
from wsol_keras.evaluation import evaluator
from wsol_keras.localization import maps as localization
from wsol_keras.localization.dual_gradient import DualGradient
from wsol_keras.models import registry as methods

S = 32
DATA_INFO = {"num_classes": 8, "hierarchy_sizes": [4, 2], "image_size": S}
LAYER = "backbone"


def _config(map_method, dgl_layer=""):
    config = config_base.make_smoke(config_base.base_config())
    config.method = methods.default_method_config("cam")
    config.data.image_size = S
    config.eval.map_method = map_method
    config.eval.dgl_layer = dgl_layer
    return config


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(3)
    m = methods.build_model(_config("cam"), DATA_INFO)
    m(tf.zeros([1, S, S, 3]), training=False)
    return m


def _images(seed=0, n=3):
    return np.random.default_rng(seed).uniform(0, 255, (n, S, S, 3)).astype("float32")


def _two_pass(model, method, images, class_ids=None):
    """The reference: a forward for the outputs, another inside DualGradient."""
    outputs = model(images, training=False)
    logits = np.asarray(outputs["logits"], np.float32)
    if class_ids is None:
        class_ids = logits.argmax(-1)
    raw = DualGradient(model, LAYER, method=method)(images, labels=class_ids)[LAYER]
    maps = localization.finish_maps(raw, S)
    return outputs, logits, np.asarray(class_ids), raw.numpy(), maps.numpy()


@pytest.mark.parametrize("method", ["dgl", "pcs", "gradcam"])
def test_gt_known_maps_equal_the_two_pass_maps(model, method):
    images = _images(1)
    labels = np.array([2, 5, 7], np.int32)
    _, logits, _, raw, maps = _two_pass(model, method, images, labels)
    got = evaluator.make_map_fn(model, _config(method, LAYER))(images, tf.constant(labels))
    np.testing.assert_allclose(got["logits"].numpy(), logits, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got["raw_maps"].numpy(), raw, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(got["maps"].numpy(), maps, atol=1e-4)


@pytest.mark.parametrize("method", ["dgl", "gradcam"])
def test_predicted_top1_maps_and_outputs_equal_the_two_pass_ones(model, method):
    # Serving / wsol-predict: no class given, the maps are of the top-1 class.
    images = _images(2)
    outputs, logits, ids, raw, maps = _two_pass(model, method, images)
    localizer = localization.Localizer.from_config(model, _config(method, LAYER))
    got = tf.function(lambda x: localizer(x))(tf.constant(images))
    np.testing.assert_array_equal(got["class_ids"].numpy(), ids)
    np.testing.assert_allclose(got["logits"].numpy(), logits, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        got["outputs"]["cams"].numpy(), outputs["cams"].numpy(), rtol=1e-5, atol=1e-5
    )
    np.testing.assert_allclose(got["maps"].numpy(), maps, atol=1e-4)


def _op_counts(model, method):
    fn = evaluator.make_map_fn(model, _config(method, LAYER if method != "cam" else ""))
    graph = fn.get_concrete_function(
        tf.TensorSpec([2, S, S, 3], tf.float32), tf.TensorSpec([2], tf.int32)
    ).graph.as_graph_def()
    counts = collections.Counter(n.op for n in graph.node)
    for function in graph.library.function:  # DualGradient's nested tf.function
        counts.update(n.op for n in function.node_def)
    return counts


@pytest.mark.parametrize(
    "method",
    ["cam", "dgl", "pcs", "gradcam", "gradcam++", "xgradcam", "layercam", "hirescam",
     "eigencam"],
)
def test_traced_map_step_holds_one_forward(model, method):
    convs = sum(isinstance(l, keras.layers.Conv2D) for l in model._flatten_layers())
    assert convs >= 4
    counts = _op_counts(model, method)
    assert counts["Conv2D"] == convs, counts
    if method not in ("cam", "eigencam"):  # and the backward of the gradient maps
        assert counts["Conv2DBackpropInput"] > 0, counts
    else:
        assert counts["Conv2DBackpropInput"] == 0, counts


def test_scorecam_adds_one_looped_forward_and_no_backward(model):
    # Score-CAM: the recording forward, plus one forward in the body of the
    # loop over the N channels (run N times, batched over the images).
    convs = sum(isinstance(l, keras.layers.Conv2D) for l in model._flatten_layers())
    counts = _op_counts(model, "scorecam")
    assert counts["Conv2D"] == 2 * convs, counts
    assert counts["Conv2DBackpropInput"] == 0, counts
    assert counts["While"] + counts["StatelessWhile"] >= 1, counts
