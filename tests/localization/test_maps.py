"""wsol_keras.localization.maps: one map path for wsol-eval and every export.

SLT-Net Eq. 9 (Guo et al., "Strengthen Learning Tolerance for Weakly
Supervised Object Localization", CVPR 2022, Sec. 3.3) averages the maps of the
K classes the *localizer* ranks highest. The expected map is worked out here
in numpy from the model's raw outputs (localizer logits, class maps).
"""

import os

import keras
import cv2
import numpy as np
import pytest
import tensorflow as tf

from wsol_keras.evaluation import evaluator
from wsol_keras.models import registry as methods
from wsol_keras.export import inference

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
S = 32
DATA_INFO = {"num_classes": 8, "hierarchy_sizes": [4, 2], "image_size": S}


def _slt_config():
    from file_modules import load_module

    module = load_module("cfg_slt", os.path.join(ROOT, "configs", "synthetic_slt.py"))
    config = module.get_config("smoke")
    config.data.image_size = S
    config.eval.topk = 3
    return config


def _numpy_topk_map(cams, rank_logits, k):
    """Eq. 9 in numpy: mean of the K best-ranked class maps, upsampled, min-max."""
    out = []
    for c, l in zip(cams, rank_logits):
        ids = np.argsort(-l, kind="stable")[:k]
        raw = c[..., ids].mean(-1)
        up = cv2.resize(np.asarray(raw, np.float32), (S, S), interpolation=cv2.INTER_CUBIC)
        out.append((up - up.min()) / (up.max() - up.min()))
    return np.stack(out)


def test_slt_exported_topk_map_equals_evaluator_map():
    keras.utils.set_random_seed(1)
    config = _slt_config()
    model = methods.build_model(config, DATA_INFO)
    images = np.random.default_rng(0).uniform(0, 255, (4, S, S, 3)).astype(np.uint8)
    x = tf.cast(images, tf.float32)
    out = model(x, training=False)
    want = _numpy_topk_map(
        out["cams"].numpy(), out["localizer_logits"].numpy(), k=3
    )
    evaluated = evaluator.make_map_fn(model, config)(x, tf.zeros([4], tf.int32))
    np.testing.assert_allclose(evaluated["maps"].numpy(), want, atol=1e-5)
    exported = inference.InferenceModule(model, config, 0.2).image_tensor(images)
    np.testing.assert_allclose(exported["heatmaps"].numpy(), want, atol=1e-4)


def _cam_config(map_method, dgl_layer=""):
    from wsol_keras.configs import base as config_base

    config = config_base.make_smoke(config_base.base_config())
    config.method = methods.default_method_config("cam")
    config.data.image_size = S
    config.eval.map_method = map_method
    config.eval.dgl_layer = dgl_layer
    return config


def test_wsol_eval_accepts_pcs_and_it_equals_cam_on_the_cam_features():
    # DGL Sec. 3.3: on the features entering conv -> GAP -> dense, pixel-level
    # class selection (Eq. 5) is the CAM (Eq. 2) up to a constant factor and
    # offset, so the min-max normalized maps coincide.
    keras.utils.set_random_seed(2)
    model = methods.build_model(_cam_config("cam"), DATA_INFO)
    images = np.random.default_rng(5).uniform(0, 255, (3, S, S, 3)).astype("float32")
    labels = tf.constant([1, 6, 3])
    cam = evaluator.make_map_fn(model, _cam_config("cam"))(images, labels)
    pcs = evaluator.make_map_fn(model, _cam_config("pcs", "backbone"))(images, labels)
    np.testing.assert_allclose(pcs["maps"].numpy(), cam["maps"].numpy(), atol=1e-4)


def test_unknown_map_method_and_missing_layer_name_the_field():
    from wsol_keras.localization import maps as localization
    model = methods.build_model(_cam_config("cam"), DATA_INFO)
    with pytest.raises(ValueError, match="config.eval.map_method='saliency'"):
        localization.Localizer.from_config(model, _cam_config("saliency"))
    with pytest.raises(ValueError, match="needs config.eval.dgl_layer"):
        localization.Localizer.from_config(model, _cam_config("gradcam"))


def test_topk_size_is_resolved_like_the_loss():
    # A fraction of the classes (SLT-Net Sec. 4.1: 0.15 of CUB's 200) and the
    # same bounds as resolve_top_k: 1 <= K < C.
    from wsol_keras.localization import maps as localization
    outputs = {"logits": tf.constant([[0.0, 3.0, 1.0, 2.0]])}
    ids = localization.Localizer(None, S, "topk", topk=0.5).topk_class_ids(outputs)
    np.testing.assert_array_equal(ids.numpy(), [[1, 3]])
    with pytest.raises(ValueError, match="config.eval.topk"):
        localization.Localizer(None, S, "topk", topk=4).topk_class_ids(outputs)
