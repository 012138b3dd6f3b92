"""The TensorFlow functions behind the exported SavedModel's signatures.

One request returns what the model sees and where (TF Model Garden serving
style: several input signatures, preprocessing in the graph):

    * ``image_bytes`` (also ``serving_default``): ``images`` string [B], encoded
      JPEG / PNG / GIF / BMP / WebP images, each of its own size;
    * ``image_tensor``: ``images`` uint8 [B, H, W, 3] RGB.

Both return

    * ``classes`` int32 [B, K]: the top-K class ids, best first;
    * ``scores`` float32 [B, K]: their softmax probabilities;
    * ``boxes`` float32 [B, 4]: the object box, absolute pixel xyxy in each
      *original* image (before the resize to S x S);
    * ``heatmaps`` float32 [B, M, M]: the localization map in [0, 1] at a fixed
      size M (default S, the model's input size).

The graph repeats the evaluator's inference path (`wsol_keras.evaluate`):
decode, direct bilinear antialiased resize to S x S (as
`wsol_keras.data.pipeline.resize_image`), the model (its backbone
normalization is a layer inside it), the map of the top-1 class
(``eval.map_method="cam"``), the mean map of the top ``eval.topk`` classes
(``"topk"``, SLT-Net Eq. 9) or a DGL / Grad-CAM map computed with a
``tf.GradientTape`` inside the serving function (``"dgl"`` / ``"gradcam"``,
Tan et al. 2020 Eq. 8), bilinear upsampling to S x S, per-image min-max
normalization, then the box of the largest connected component above the CAM
threshold (`wsol_keras.boxes.tf_largest_component_box`, pure TF ops, equal to
the evaluator's cv2 path). Models that regress boxes (SLT-Net) return their
regressor's box instead, as the evaluator scores it.

Box coordinates: a box in the S x S frame (evaluator convention, see
`wsol_keras.boxes`) maps to the original W x H image by multiplying x by W / S
and y by H / S, the inverse of the data pipeline's `scale_boxes`. Normalized
regressor boxes ``n`` are first mapped to ``n * (S - 1)`` as in the evaluator.

The CAM threshold is the one the evaluator chose on the val split (the
workdir's ``metrics.json`` ``cam_threshold``), else ``config.eval.cam_threshold``,
else ``DEFAULT_CAM_THRESHOLD`` (0.2, the CAM paper's value).
"""

import datetime
import json
import os
import re
import shutil
import tempfile

import keras
import tensorflow as tf

from wsol_keras import boxes as boxes_lib
from wsol_keras import cams as cams_lib
from wsol_keras import workdir as workdir_lib

DEFAULT_CAM_THRESHOLD = 0.2
DEFAULT_TOP_K = 5
SIGNATURES = ("serving_default", "image_bytes", "image_tensor")
OUTPUT_KEYS = ("classes", "scores", "boxes", "heatmaps")
MODEL_CARD_FILE = "model_card.json"
CONFIG_ASSET_FILE = "config.json"

# Magic numbers of the formats tf.io.decode_image reads.
_MAGIC = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"BM")


def resolve_cam_threshold(workdir, config):
    """Returns (threshold, source) for the exported box step.

    Args:
        workdir: a wsol-train workdir (may be None).
        config: its ConfigDict.

    Returns:
        (float, str): the threshold and where it came from
        ("metrics.json", "config.eval.cam_threshold" or "default").
    """
    if workdir:
        path = os.path.join(workdir, "metrics.json")
        if os.path.exists(path):
            with open(path) as f:
                try:
                    metrics = json.load(f)
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}: not valid JSON ({e})") from e
            if "cam_threshold" in metrics:
                return _check_threshold(metrics["cam_threshold"], path), "metrics.json"
    value = config.eval.get("cam_threshold", None)
    if value is not None:
        return _check_threshold(value, "config.eval.cam_threshold"), (
            "config.eval.cam_threshold"
        )
    return DEFAULT_CAM_THRESHOLD, "default"


def _check_threshold(value, origin):
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{origin}: cam_threshold={value} is not in [0, 1]")
    return value


def read_test_metrics(workdir):
    """The workdir's metrics.json (test split) as a dict, or None."""
    path = os.path.join(workdir, "metrics.json") if workdir else None
    if not path or not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def _map_fn(model, config):
    """Returns fn(float images [B,S,S,3], logits) -> raw maps [B, h, w]."""
    e = config.eval
    method = e.get("map_method", "cam")
    if method in ("dgl", "gradcam", "pcs"):
        from wsol_keras import dual_gradient  # pylint: disable=g-import-not-at-top

        if not e.get("dgl_layer", ""):
            raise ValueError(
                f"config.eval.map_method={method!r} needs config.eval.dgl_layer "
                "(a layer path) to export"
            )
        explainer = dual_gradient.DualGradient(model, [e.dgl_layer], method=method)

        def dgl_maps(images, outputs, logits):
            del outputs
            top1 = tf.argmax(logits, axis=-1, output_type=tf.int32)
            return explainer(images, labels=top1)[e.dgl_layer]

        return dgl_maps
    if method == "cam":

        def cam_maps(images, outputs, logits):
            del images
            return cams_lib.select_class_maps(
                outputs["cams"], tf.argmax(logits, axis=-1, output_type=tf.int32)
            )

        return cam_maps
    if method == "topk":
        k = int(e.get("topk", 1))

        def topk_maps(images, outputs, logits):
            del images
            return cams_lib.select_class_maps(
                outputs["cams"], cams_lib.topk_class_ids(logits, k)
            )

        return topk_maps
    raise ValueError(
        f"config.eval.map_method={method!r}: expected cam, topk, dgl or gradcam"
    )


class ServingFunctions:
    """Builds the inference graph of a trained model for export.

    Args:
        model: a `WSOLModel` (outputs "logits", "cams", optional "boxes").
        config: its experiment ConfigDict (``data.image_size``, ``eval``).
        cam_threshold: threshold of the in-graph box step, in [0, 1].
        top_k: number of classes returned (capped at the number of classes).
        heatmap_size: side M of the returned heat maps (default S).

    Attributes:
        image_size: S.
        image_bytes, image_tensor: tf.functions with fixed input signatures.
    """

    def __init__(
        self, model, config, cam_threshold, top_k=DEFAULT_TOP_K, heatmap_size=None
    ):
        self.model = model
        self.config = config
        self.image_size = int(config.data.image_size)
        self.cam_threshold = _check_threshold(cam_threshold, "cam_threshold")
        if int(top_k) < 1:
            raise ValueError(f"top_k={top_k}: must be >= 1")
        self.top_k = int(top_k)
        self.heatmap_size = int(heatmap_size or self.image_size)
        if self.heatmap_size < 1:
            raise ValueError(f"heatmap_size={heatmap_size}: must be >= 1")
        self._maps = _map_fn(model, config)
        self.image_bytes = tf.function(
            self._image_bytes,
            input_signature=[tf.TensorSpec([None], tf.string, name="images")],
        )
        self.image_tensor = tf.function(
            self._image_tensor,
            input_signature=[
                tf.TensorSpec([None, None, None, 3], tf.uint8, name="images")
            ],
        )

    # -- preprocessing -----------------------------------------------------------

    def resize(self, images):
        """[B, H, W, 3] uint8 -> [B, S, S, 3] uint8, as the data pipeline."""
        s = self.image_size
        out = tf.image.resize(images, [s, s], method="bilinear", antialias=True)
        return tf.cast(tf.clip_by_value(tf.round(out), 0, 255), tf.uint8)

    def decode(self, encoded):
        """string [B] -> (uint8 [B, S, S, 3], int32 [B, 2] original (H, W)).

        An element that is not an image raises InvalidArgumentError naming its
        index; a truncated or damaged image raises the decoder's
        InvalidArgumentError.
        """
        s = self.image_size

        def one(args):
            index, data = args
            head = tf.strings.substr(data, 0, 4)
            known = tf.reduce_any(
                [tf.strings.substr(head, 0, len(m)) == m for m in _MAGIC]
                + [
                    tf.logical_and(
                        tf.strings.substr(data, 0, 4) == b"RIFF",
                        tf.strings.substr(data, 8, 4) == b"WEBP",
                    )
                ]
            )
            check = tf.debugging.Assert(
                known,
                [
                    "image_bytes: input",
                    index,
                    "is not an encoded JPEG, PNG, GIF, BMP or WebP image; "
                    "its first bytes are",
                    head,
                ],
                name="check_image_format",
            )
            with tf.control_dependencies([check]):
                image = tf.io.decode_image(
                    data, channels=3, expand_animations=False, dtype=tf.uint8
                )
            hw = tf.shape(image)[:2]
            return self.resize(image[None])[0], hw

        n = tf.shape(encoded)[0]
        images, hw = tf.map_fn(
            one,
            (tf.range(n), encoded),
            fn_output_signature=(
                tf.TensorSpec([s, s, 3], tf.uint8),
                tf.TensorSpec([2], tf.int32),
            ),
        )
        return images, hw

    # -- the shared inference path -----------------------------------------------

    def predict(self, images, original_hw):
        """Model + map + box on resized images.

        Args:
            images: uint8 or float [B, S, S, 3] in [0, 255].
            original_hw: int [B, 2] (H, W) of each original image.

        Returns:
            dict with OUTPUT_KEYS (see the module docstring).
        """
        s = self.image_size
        x = tf.cast(images, tf.float32)
        outputs = self.model(x, training=False)
        logits = tf.cast(outputs["logits"], tf.float32)
        k = min(self.top_k, int(logits.shape[-1]))
        top = tf.math.top_k(tf.nn.softmax(logits), k=k)
        heat = cams_lib.normalize_maps(
            cams_lib.upsample_maps(self._maps(x, outputs, logits), s)
        )
        if "boxes" in outputs:
            box_s = tf.clip_by_value(tf.cast(outputs["boxes"], tf.float32), 0.0, 1.0)
            box_s = box_s * float(s - 1)
        else:
            box_s = tf.cast(
                boxes_lib.tf_largest_component_box(heat, self.cam_threshold),
                tf.float32,
            )
        hw = tf.cast(original_hw, tf.float32)
        scale = tf.stack([hw[:, 1], hw[:, 0], hw[:, 1], hw[:, 0]], axis=1) / float(s)
        if self.heatmap_size != s:
            heat = tf.clip_by_value(
                cams_lib.upsample_maps(heat, self.heatmap_size), 0, 1
            )
        return {
            "classes": tf.cast(top.indices, tf.int32),
            "scores": top.values,
            "boxes": box_s * scale,
            "heatmaps": heat,
        }

    def _image_bytes(self, images):
        resized, hw = self.decode(images)
        return self.predict(resized, hw)

    def _image_tensor(self, images):
        shape = tf.shape(images)
        hw = tf.tile(shape[1:3][None], [shape[0], 1])
        return self.predict(self.resize(images), hw)


def tf_variables(model):
    """The tf.Variables under a Keras model's variables (what a SavedModel tracks).

    Tracking the backing `tf.Variable`s rather than the Keras wrappers lets the
    TFLite converter freeze them into constants (with the wrappers it leaves
    READ_VARIABLE ops that LiteRT cannot run).
    """
    return [getattr(v, "value", v) for v in model.variables]


def make_model_card(
    config,
    data_info,
    cam_threshold,
    threshold_source,
    metrics,
    model_name,
    top_k,
    heatmap_size,
):
    """The model card shipped as an asset (JSON-serializable dict)."""
    metrics = {k: v for k, v in (metrics or {}).items() if not k.startswith("_")}
    return {
        "model_name": model_name,
        "method": config.method.name,
        "backbone": config.model.backbone,
        "class_names": list(data_info.get("class_names", [])),
        "num_classes": int(data_info["num_classes"]),
        "input_size": int(config.data.image_size),
        "heatmap_size": int(heatmap_size),
        "top_k": int(top_k),
        "map_method": config.eval.get("map_method", "cam"),
        "cam_threshold": float(cam_threshold),
        "cam_threshold_source": threshold_source,
        "test_metrics": metrics or None,
        "signatures": {
            "serving_default": "alias of image_bytes",
            "image_bytes": "images: string [B] encoded JPEG/PNG/GIF/BMP/WebP",
            "image_tensor": "images: uint8 [B, H, W, 3] RGB",
            "outputs": {
                "classes": "int32 [B, K] top-K class ids",
                "scores": "float32 [B, K] softmax probabilities",
                "boxes": "float32 [B, 4] xyxy pixels of each original image",
                "heatmaps": "float32 [B, M, M] in [0, 1]",
            },
        },
        "exported_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "tensorflow_version": tf.__version__,
        "keras_version": keras.__version__,
    }


def next_version(model_dir):
    """1 + the highest numeric version folder under model_dir (1 if none)."""
    if not os.path.isdir(model_dir):
        return 1
    versions = [int(d) for d in os.listdir(model_dir) if d.isdigit()]
    return max(versions, default=0) + 1


def default_model_name(config):
    return f"{config.method.name}_{config.model.backbone}"


def export_model(
    model,
    config,
    data_info,
    export_base,
    model_name=None,
    version=None,
    cam_threshold=None,
    threshold_source="argument",
    metrics=None,
    top_k=DEFAULT_TOP_K,
    heatmap_size=None,
    overwrite=False,
):
    """Writes a SavedModel to ``<export_base>/<model_name>/<version>/`` atomically.

    The SavedModel is written to a hidden temporary folder next to the target
    (TF Serving ignores non-numeric names) and renamed, so a server watching
    ``export_base/model_name`` never loads a half-written version.

    Args:
        model: the trained model.
        config: its ConfigDict.
        data_info: dict with "num_classes", "class_names", "image_size".
        export_base: TF Serving base folder.
        model_name: folder / served name (default ``<method>_<backbone>``).
        version: positive int (default: next free number).
        cam_threshold: box threshold (default: config.eval.cam_threshold, else
            DEFAULT_CAM_THRESHOLD).
        threshold_source: recorded in the model card.
        metrics: test metrics for the model card (or None).
        top_k: classes returned per image.
        heatmap_size: side of the returned heat maps (default S).
        overwrite: replace an existing version folder.

    Returns:
        The version folder's path.
    """
    model_name = model_name or default_model_name(config)
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", model_name):
        raise ValueError(
            f"model_name={model_name!r}: use letters, digits, '_', '.', '-' only"
        )
    if cam_threshold is None:
        cam_threshold, threshold_source = resolve_cam_threshold(None, config)
    model_dir = os.path.join(export_base, model_name)
    version = next_version(model_dir) if version is None else int(version)
    if version < 1:
        raise ValueError(f"version={version}: TF Serving versions are positive ints")
    target = os.path.join(model_dir, str(version))
    if os.path.exists(target) and not overwrite:
        raise FileExistsError(f"{target} exists; pass a new version or overwrite=True")
    os.makedirs(model_dir, exist_ok=True)

    functions = ServingFunctions(
        model, config, cam_threshold, top_k=top_k, heatmap_size=heatmap_size
    )
    card = make_model_card(
        config,
        data_info,
        cam_threshold,
        threshold_source,
        metrics,
        model_name,
        functions.top_k,
        functions.heatmap_size,
    )
    tmp = tempfile.mkdtemp(dir=model_dir, prefix=f".tmp-{version}-")
    try:
        staging = os.path.join(tmp, "assets_src")
        os.makedirs(staging)
        card_path = os.path.join(staging, MODEL_CARD_FILE)
        config_path = os.path.join(staging, CONFIG_ASSET_FILE)
        workdir_lib.write_json_atomic(card_path, card)
        workdir_lib.write_json_atomic(
            config_path, {"config": config.to_dict(), "data_info": data_info}
        )
        # Like keras.export.ExportArchive: track the variables, not the Keras
        # objects, so the SavedModel holds plain tf.functions and variables
        # (loadable with TensorFlow alone) plus the two JSON assets.
        root = tf.Module()
        root.model_variables = tf_variables(model)
        root.model_card = tf.saved_model.Asset(card_path)
        root.config = tf.saved_model.Asset(config_path)
        root.image_bytes = functions.image_bytes
        root.image_tensor = functions.image_tensor
        bytes_fn = functions.image_bytes.get_concrete_function()
        out = os.path.join(tmp, "saved_model")
        tf.saved_model.save(
            root,
            out,
            signatures={
                "serving_default": bytes_fn,
                "image_bytes": bytes_fn,
                "image_tensor": functions.image_tensor.get_concrete_function(),
            },
        )
        if os.path.exists(target):
            shutil.rmtree(target)
        os.rename(out, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def export_saved_model(
    workdir,
    export_base,
    model_name=None,
    version=None,
    top_k=DEFAULT_TOP_K,
    heatmap_size=None,
    overwrite=False,
):
    """`wsol-export`: rebuilds a workdir's model and exports it (see export_model).

    Returns:
        The version folder's path.
    """
    model, config, data_info = workdir_lib.load_model(workdir)
    threshold, source = resolve_cam_threshold(workdir, config)
    return export_model(
        model,
        config,
        data_info,
        export_base,
        model_name=model_name,
        version=version,
        cam_threshold=threshold,
        threshold_source=source,
        metrics=read_test_metrics(workdir),
        top_k=top_k,
        heatmap_size=heatmap_size,
        overwrite=overwrite,
    )


def read_model_card(saved_model_dir):
    """The model card of an exported version folder."""
    path = os.path.join(saved_model_dir, "assets", MODEL_CARD_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} not found: not a wsol-export SavedModel?")
    with open(path) as f:
        return json.load(f)
