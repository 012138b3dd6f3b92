"""One map path: the exported SLT-Net top-K map is the evaluated one.

SLT-Net Eq. 9 (Guo et al., "Strengthen Learning Tolerance for Weakly
Supervised Object Localization", CVPR 2022, Sec. 3.3) averages the maps of the
K classes the *localizer* ranks highest. The expected map is worked out here
in numpy from the model's raw outputs (localizer logits, class maps).
"""

import os

import keras
import numpy as np
import tensorflow as tf

from wsol_keras import evaluate
from wsol_keras import methods
from wsol_keras.export import inference

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
S = 32
DATA_INFO = {"num_classes": 8, "hierarchy_sizes": [4, 2], "image_size": S}


def _slt_config():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "cfg_slt", os.path.join(ROOT, "configs", "synthetic_slt.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
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
        up = tf.image.resize(raw[None, ..., None], [S, S], method="bilinear")
        up = up.numpy()[0, ..., 0]
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
    evaluated = evaluate.make_map_fn(model, config)(x, tf.zeros([4], tf.int32))
    np.testing.assert_allclose(evaluated["maps"].numpy(), want, atol=1e-5)
    exported = inference.InferenceModule(model, config, 0.2).image_tensor(images)
    np.testing.assert_allclose(exported["heatmaps"].numpy(), want, atol=1e-4)
