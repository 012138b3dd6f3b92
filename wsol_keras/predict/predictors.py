"""What `wsol-predict` runs: a trained workdir or any Keras classifier, as one callable.

A `Predictor` maps a batch of uint8 images [B, S, S, 3] (the data pipeline's
direct resize) to the top-1 class, its softmax score, the top-5 classes and
the localization map [B, S, S] in [0, 1] of the top-1 class, computed by
`wsol_keras.localization.maps` (the evaluator's map path), and names the CAM
threshold of the box step.

* `from_workdir`: a wsol-train workdir, any method; the map method and layer
  of its config (or given), the CAM threshold of `threshold_for`.
* `from_classifier`: a `keras.applications` name (``weights`` = "imagenet", a
  weights file or None) or a ``.keras`` file, with DGL / PCS / Grad-CAM maps on a
  layer the user names. DGL needs no retraining (Tan et al., "Dual-Gradients
  Localization Framework for Weakly Supervised Object Localization", ACM MM
  2020, Sec. 3.5).
"""

import json
import os
import sys

import keras
import numpy as np
import ml_collections
import tensorflow as tf

from wsol_keras.evaluation import records
from wsol_keras.localization import maps as localization
from wsol_keras.models import backbones
from wsol_keras.training import workdir as workdir_lib
PREPROCESS_MODES = ("auto", "none", "caffe", "tf", "torch")


def threshold_for(workdir, config, map_method):
    """The CAM threshold of the box step for `map_method`; (value, source).

    The one lookup `wsol-predict` uses: the workdir's evaluation record of
    that map method (and layer) on the same weights
    (`records.resolve_cam_threshold`); a threshold chosen for another map
    method is never reused, as maps of different methods live on different
    scales. Without such a record: the config's threshold, else the default.
    """
    config = ml_collections.ConfigDict(config.to_dict())
    with config.unlocked():
        config.eval.map_method = map_method
    return records.resolve_cam_threshold(workdir, config)


def parse_weights(weights):
    """'none' / 'None' / '' -> None; anything else unchanged."""
    if weights is None or str(weights).strip().lower() in ("", "none"):
        return None
    return weights


def _top5(logits, multi_label=False):
    # Multi-label models (VOC / COCO) score each class on its own: sigmoid.
    logits = tf.cast(logits, tf.float32)
    probs = tf.sigmoid(logits) if multi_label else tf.nn.softmax(logits, axis=-1)
    k = min(5, int(probs.shape[-1]))
    scores, ids = tf.math.top_k(probs, k=k)
    return ids, scores


class Predictor:
    """Batch of uint8 [B, S, S, 3] -> numpy dict (see module docstring).

    Result keys: "class_ids" int [B], "scores" float [B] (softmax of the
    top-1 class; sigmoid for multi-label workdirs), "top5_ids" / "top5_scores" [B, K], "maps" float32 [B, S, S]
    and, for box regressors, "boxes" [B, 4] xyxy in S x S pixels.
    """

    def __init__(self, fn, image_size, class_names, map_method, layer,
                 cam_threshold, threshold_source, description):
        self._fn = fn
        self.image_size = int(image_size)
        self.class_names = list(class_names)
        self.map_method = map_method
        self.layer = layer
        self.cam_threshold = float(cam_threshold)
        self.threshold_source = threshold_source
        self.description = description

    def class_name(self, class_id):
        if 0 <= class_id < len(self.class_names):
            return self.class_names[class_id]
        return f"class_{class_id}"

    def __call__(self, images):
        out = self._fn(tf.convert_to_tensor(images, tf.uint8))
        result = {k: v.numpy() for k, v in out.items()}
        if "boxes" in result:
            size = self.image_size
            result["boxes"] = np.clip(result["boxes"], 0.0, 1.0) * (size - 1)
        return result

    def settings(self):
        return {
            "model": self.description,
            "image_size": self.image_size,
            "map_method": self.map_method,
            "layer": self.layer,
            "cam_threshold": self.cam_threshold,
            "cam_threshold_source": self.threshold_source,
        }


def from_workdir(workdir, map_method=None, dgl_layer=None, cam_threshold=None):
    """A `Predictor` for a wsol-train workdir (maps of the top-1 class)."""
    model, config, data_info = workdir_lib.load_model(workdir)
    with config.unlocked():
        if map_method:
            config.eval.map_method = map_method
        if dgl_layer:
            config.eval.dgl_layer = dgl_layer
    localizer = localization.Localizer.from_config(model, config)
    multi_label = bool(data_info.get("multi_label", False))
    if cam_threshold is None:
        threshold, source = threshold_for(workdir, config, config.eval.map_method)
    else:
        threshold = localization.check_cam_threshold(cam_threshold, "--cam_threshold")
        source = "--cam_threshold"

    @tf.function(reduce_retracing=True)
    def run(images):
        result = localizer(tf.cast(images, tf.float32))  # class_ids None: top-1
        ids, scores = _top5(result["logits"], multi_label)
        out = {
            "class_ids": result["class_ids"],
            "scores": scores[:, 0],
            "top5_ids": ids,
            "top5_scores": scores,
            "maps": result["maps"],
        }
        if "boxes" in result:
            out["boxes"] = result["boxes"]
        return out

    return Predictor(
        run,
        config.data.image_size,
        data_info["class_names"],
        config.eval.map_method,
        config.eval.dgl_layer if localizer.needs_gradients else "",
        threshold,
        source,
        f"workdir {os.path.abspath(workdir)} ({config.method.name})",
    )


def keras_application(name, weights=None, image_size=None):
    """Builds ``keras.applications.<name>`` with its top.

    Returns:
        (model, preprocess_input of its module).

    Raises:
        ValueError: an unknown name.
    """
    builder = getattr(keras.applications, name, None)
    if builder is None or not callable(builder):
        names = sorted(n for n in dir(keras.applications) if n[:1].isupper())
        raise ValueError(
            f"--classifier={name!r} is not a keras.applications model; "
            f"available: {', '.join(names)}"
        )
    kwargs = {"weights": parse_weights(weights), "include_top": True}
    if image_size:
        kwargs["input_shape"] = (int(image_size), int(image_size), 3)
    try:
        model = builder(**kwargs)
    except Exception as error:  # pylint: disable=broad-except
        if kwargs["weights"] == "imagenet" and backbones.is_download_failure(error):
            raise OSError(
                f"could not download the ImageNet weights of keras.applications."
                f"{name} ({type(error).__name__}: {error}). Offline, pass a local "
                f"weights file (--weights=/path/to/weights.h5, the keras.applications "
                "file of this model with its top) or --weights=none (random "
                "weights: the maps then mean nothing)."
            ) from error
        raise
    module = sys.modules[builder.__module__]
    return model, getattr(module, "preprocess_input")


def _imagenet_class_names():
    # Only a copy Keras already downloaded: prediction must work offline.
    path = os.path.join(
        os.path.expanduser("~"), ".keras", "models", "imagenet_class_index.json"
    )
    if not os.path.exists(path):
        return []
    with open(path) as f:
        index = json.load(f)
    return [index[str(i)][1] for i in range(len(index))]


def read_class_names(path):
    """One class name per line."""
    with open(path) as f:
        return [line.strip() for line in f if line.strip()]


def _preprocess_fn(mode):
    if mode == "none":
        return lambda x: x
    return lambda x: keras.applications.imagenet_utils.preprocess_input(x, mode=mode)


def from_classifier(
    classifier,
    layer,
    map_method="dgl",
    weights=None,
    image_size=None,
    preprocess="auto",
    class_names=None,
    cam_threshold=None,
):
    """A `Predictor` for a plain classifier with gradient maps on `layer`.

    Args:
        classifier: a `keras.applications` name (e.g. "VGG16") or a ``.keras``
            file.
        layer: layer path of the maps (e.g. "block5_conv3").
        map_method: one of `localization.GRADIENT_MAP_METHODS` (dgl, pcs,
            gradcam and the CAM family).
        weights: keras.applications only: "imagenet", a weights file, or None.
        image_size: input side (default: the model's).
        preprocess: "auto" (keras.applications: the model's own
            preprocess_input; .keras: none), "none", "caffe", "tf" or "torch".
        class_names: list of names (default: ImageNet's when cached, else ids).
        cam_threshold: box threshold (default `localization.FALLBACK_CAM_THRESHOLD`).
    """
    if map_method not in localization.GRADIENT_MAP_METHODS:
        raise ValueError(
            f"--map_method={map_method!r}: a plain classifier needs one of "
            f"{', '.join(localization.GRADIENT_MAP_METHODS)}"
        )
    if not layer:
        raise ValueError("--layer is required with --classifier (e.g. block5_conv3)")
    if preprocess not in PREPROCESS_MODES:
        raise ValueError(f"--preprocess={preprocess!r}: expected one of {PREPROCESS_MODES}")
    if classifier.endswith(".keras"):
        if not os.path.exists(classifier):
            raise FileNotFoundError(f"--classifier={classifier}: file not found")
        # Importing this module ran wsol_keras/__init__.py, which registers
        # the package's layers: .keras files holding them load here.
        model = keras.saving.load_model(classifier, compile=False)
        preprocess_input = _preprocess_fn("none" if preprocess == "auto" else preprocess)
        description = f"{os.path.abspath(classifier)}"
    else:
        model, own = keras_application(classifier, weights, image_size)
        preprocess_input = own if preprocess == "auto" else _preprocess_fn(preprocess)
        description = f"keras.applications.{classifier} (weights={parse_weights(weights)})"
    size = image_size or model.input_shape[1]
    if not size:
        raise ValueError(
            f"{classifier}: the model's input size is not fixed; pass --image_size"
        )
    localizer = localization.Localizer(model, size, map_method=map_method, dgl_layer=layer)
    num_classes = int(model.output_shape[-1])
    names = list(class_names or [])
    if not names and num_classes == 1000:
        names = _imagenet_class_names()

    def run(images):
        x = preprocess_input(tf.cast(images, tf.float32))
        raw = localizer.explainer(x, labels=None, return_logits=True)
        ids, scores = _top5(raw["logits"])
        return {
            "class_ids": raw["target"],
            "scores": scores[:, 0],
            "top5_ids": ids,
            "top5_scores": scores,
            "maps": localization.finish_maps(raw[layer], size),
        }

    if cam_threshold is None:
        threshold, source = localization.FALLBACK_CAM_THRESHOLD, "default"
    else:
        threshold = localization.check_cam_threshold(cam_threshold, "--cam_threshold")
        source = "--cam_threshold"
    return Predictor(
        run, size, names, map_method, layer, threshold, source, description
    )
