"""TFLite export of a trained model: fixed input size, four precisions.

Variants (`VARIANTS`):
    * ``float32``: no quantization;
    * ``float16``: float16 weights (computed in float32 on CPU);
    * ``dynamic_int8``: int8 weights, activations quantized on the fly;
    * ``int8``: full integer quantization, calibrated on images of the training
      split (`representative_images`); uint8 image input (pixels are exact with
      the calibrated scale 1, zero point 0), float32 outputs (dequantized).

Every variant takes one image [1, S, S, 3] in [0, 255] (float32, or uint8 for
``int8``) and returns ``logits`` [1, C] and ``cams`` [1, h, w, C] (the model's
class maps). The float variants also return ``heatmap`` [1, S, S] (the map of
the top-1 class, or the mean of the top-k for ``eval.map_method="topk"``,
upsampled and min-max normalized in the graph as in the SavedModel) and, when
its ops convert to TFLite builtins, ``box`` [1, 4] (xyxy in the S x S frame;
the regressor's box for models that predict one). With TF 2.21 the in-graph
box step (`boxes.tf_largest_component_box`) does not convert while it uses
int64 segment sums / argmax (TFLite builtins take int32) and a float64 cut
level (passed ``float64_quantization=False`` here when offered), so the box
falls back to the host; the manifest records which level converted and why.
The int8 variant returns logits and cams only (min-max normalization and the
box loop are not integer ops), plus the regressor's box for models that have
one. `postprocess` computes heat map and box on the host from ``cams`` with
the evaluator's cv2 path. DGL / Grad-CAM maps need gradients, which TFLite does
not run: models evaluated with them get CAM heat maps here.
"""

import inspect
import os
import shutil
import tempfile

import numpy as np
import tensorflow as tf

from wsol_keras import boxes as boxes_lib
from wsol_keras import cams as cams_lib
from wsol_keras import serving
from wsol_keras import workdir as workdir_lib

VARIANTS = ("float32", "float16", "dynamic_int8", "int8")
MANIFEST_FILE = "tflite_manifest.json"


POSTPROCESS_LEVELS = ("box", "heatmap", "none")


def make_inference_fn(
    model, image_size, cam_threshold, postprocess="box", input_dtype=tf.float32, topk=1
):
    """The tf.function converted to TFLite.

    Args:
        model: a `WSOLModel`.
        image_size: S.
        cam_threshold: threshold of the in-graph box step.
        postprocess: "box" (also return "heatmap" and "box"), "heatmap" (only
            "heatmap") or "none" (logits and cams only). Models with a box
            regressor always return its "box" (xyxy in the S x S frame).
        input_dtype: tf.float32 or tf.uint8.
        topk: the heat map is the mean of the maps of the top-k classes
            (1: the top-1 class map; SLT-Net Eq. 9 for k > 1).

    Returns:
        tf.function with input signature ``image`` [1, S, S, 3].
    """
    if postprocess not in POSTPROCESS_LEVELS:
        raise ValueError(
            f"postprocess={postprocess!r}: expected one of {POSTPROCESS_LEVELS}"
        )
    s = int(image_size)

    def fn(image):
        x = tf.cast(image, tf.float32)
        outputs = model(x, training=False)
        logits = tf.cast(outputs["logits"], tf.float32)
        result = {"logits": logits, "cams": tf.cast(outputs["cams"], tf.float32)}
        if "boxes" in outputs:
            # A box regressor's box (SLT-Net) is a few elementwise ops: always in.
            box = tf.clip_by_value(tf.cast(outputs["boxes"], tf.float32), 0.0, 1.0)
            result["box"] = box * float(s - 1)
        if postprocess == "none":
            return result
        # Class weights from one_hot(top_k) rather than a batched gather: both
        # are TFLite builtins this way.
        ids = tf.math.top_k(logits, k=int(topk)).indices
        weights = tf.reduce_mean(
            tf.one_hot(ids, int(logits.shape[-1]), dtype=tf.float32), axis=1
        )
        selected = tf.reduce_sum(result["cams"] * weights[:, None, None, :], axis=-1)
        heat = cams_lib.normalize_maps(cams_lib.upsample_maps(selected, s))
        result["heatmap"] = heat
        if postprocess == "box" and "box" not in result:
            result["box"] = tf.cast(
                boxes_lib.tf_largest_component_box(
                    heat, cam_threshold, **_tflite_box_kwargs()
                ),
                tf.float32,
            )
        return result

    return tf.function(
        fn, input_signature=[tf.TensorSpec([1, s, s, 3], input_dtype, name="image")]
    )


def _tflite_box_kwargs():
    """float32 quantization of the box step where offered: TFLite has no float64."""
    params = inspect.signature(boxes_lib.tf_largest_component_box).parameters
    return {"float64_quantization": False} if "float64_quantization" in params else {}


def representative_images(source, num_images=64, split="train"):
    """uint8 [N, S, S, 3] images of a split (calibration data for ``int8``)."""
    batches = [
        b["image"].numpy() for b in source.dataset(split).take(num_images).batch(64)
    ]
    if not batches:
        raise ValueError(f"split {split!r} has no images for int8 calibration")
    return np.concatenate(batches)


def convert(
    model,
    image_size,
    variant,
    cam_threshold=serving.DEFAULT_CAM_THRESHOLD,
    calibration_images=None,
    postprocess="box",
    topk=1,
):
    """Converts `model` to one TFLite variant.

    Args:
        model: a `WSOLModel`.
        image_size: S.
        variant: one of VARIANTS.
        cam_threshold: threshold of the in-graph box step.
        calibration_images: uint8 [N, S, S, 3] (required for ``int8``).
        postprocess: the most post-processing to try in the graph ("box",
            "heatmap" or "none"; float variants only): levels whose ops do not
            convert to TFLite builtins fall back to the next one.
        topk: classes averaged by the heat map (see `make_inference_fn`).

    Returns:
        (flatbuffer bytes, dict with "variant", "postprocess_in_graph" (the
        level that converted) and "conversion_fallback" (why a higher level
        did not, or None)).
    """
    if variant not in VARIANTS:
        raise ValueError(f"TFLite variant {variant!r}: expected one of {VARIANTS}")
    full_int8 = variant == "int8"
    if full_int8 and (calibration_images is None or len(calibration_images) == 0):
        raise ValueError("TFLite variant 'int8' needs calibration_images")
    if postprocess not in POSTPROCESS_LEVELS:
        raise ValueError(
            f"postprocess={postprocess!r}: expected one of {POSTPROCESS_LEVELS}"
        )
    attempts = (
        ["none"]
        if full_int8
        else list(POSTPROCESS_LEVELS[POSTPROCESS_LEVELS.index(postprocess) :])
    )
    last_error = None
    for with_post in attempts:
        fn = make_inference_fn(
            model,
            image_size,
            cam_threshold,
            postprocess=with_post,
            input_dtype=tf.uint8 if full_int8 else tf.float32,
            topk=topk,
        )
        # Through a SavedModel, as keras.export's LiteRT path: the converter
        # freezes the variables of a SavedModel into constants.
        tmp = tempfile.mkdtemp(prefix="wsol-tflite-")
        try:
            root = tf.Module()
            root.model_variables = serving.tf_variables(model)
            root.fn = fn
            tf.saved_model.save(
                root, tmp, signatures={"serving_default": fn.get_concrete_function()}
            )
            converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
            content = _configure_and_convert(converter, variant, calibration_images)
        except Exception as e:  # pylint: disable=broad-except
            # The converter raises ConverterError (not exported) for ops without
            # a builtin kernel; retry without the post-processing ops.
            last_error = e
            continue
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return content, {
            "variant": variant,
            "postprocess_in_graph": with_post,
            "conversion_fallback": _short_error(last_error),
        }
    raise RuntimeError(f"TFLite conversion of variant {variant!r} failed: {last_error}")


def _short_error(error):
    """The converter's list of unsupported ops, else its first line."""
    if error is None:
        return None
    lines = str(error).splitlines()
    for line in lines:
        if line.startswith("TF Select ops:"):
            return line
    return lines[0][:300] if lines else type(error).__name__


def _configure_and_convert(converter, variant, calibration_images):
    """Sets the quantization options of one variant and converts."""
    if variant == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif variant == "dynamic_int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif variant == "int8":
        images = np.asarray(calibration_images, np.uint8)

        def representative_dataset():
            for image in images:
                yield [image[None]]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative_dataset
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.float32
    return converter.convert()


class LiteRTModel:
    """Runs a converted model with the LiteRT interpreter (`ai_edge_litert`).

    Args:
        model_content: flatbuffer bytes, or a path to a .tflite file.
        num_threads: interpreter threads.
    """

    def __init__(self, model_content, num_threads=1):
        from ai_edge_litert.interpreter import (
            Interpreter,
        )  # pylint: disable=g-import-not-at-top

        if isinstance(model_content, (str, os.PathLike)):
            self.interpreter = Interpreter(
                model_path=os.fspath(model_content), num_threads=num_threads
            )
        else:
            self.interpreter = Interpreter(
                model_content=model_content, num_threads=num_threads
            )
        self.runner = self.interpreter.get_signature_runner()
        details = self.runner.get_input_details()
        if list(details) != ["image"]:
            raise ValueError(f"expected one input named 'image', got {list(details)}")
        self.input_dtype = details["image"]["dtype"]
        self.input_shape = tuple(details["image"]["shape"])

    def __call__(self, image):
        """image: [S, S, 3] or [1, S, S, 3] in [0, 255] -> dict of numpy outputs."""
        image = np.asarray(image)
        if image.ndim == 3:
            image = image[None]
        if tuple(image.shape) != self.input_shape:
            raise ValueError(
                f"TFLite model takes {self.input_shape} images, got {image.shape}"
            )
        if self.input_dtype == np.uint8:
            image = np.clip(np.round(image), 0, 255).astype(np.uint8)
        return self.runner(image=image.astype(self.input_dtype))


def postprocess(cams, logits, image_size, cam_threshold, topk=1, class_ids=None):
    """Host-side heat map and box from TFLite ``cams`` (the evaluator's path).

    Args:
        cams: [1, h, w, C] or [h, w, C].
        logits: [1, C] or [C].
        image_size: S.
        cam_threshold: CAM threshold.
        topk: average the maps of the top-k classes (default top-1).
        class_ids: classes whose (mean) map is used instead, e.g. the ground
            truth for GT-known localization.

    Returns:
        (heatmap [S, S] float32 in [0, 1], box [4] xyxy in the S x S frame).
    """
    cams = np.asarray(cams, np.float32).reshape((-1,) + np.shape(cams)[-3:])
    logits = np.asarray(logits, np.float32).reshape(1, -1)
    if class_ids is None:
        cls = np.argsort(-logits, axis=-1, kind="stable")[:, :topk]
    else:
        cls = np.reshape(class_ids, [1, -1])
    heat = cams_lib.localization_maps(cams, cls, image_size).numpy()[0]
    box = boxes_lib.boxes_from_scoremap(heat, [cam_threshold], multi_contour=False)[0][
        0
    ][0]
    return heat, np.asarray(box, np.float32)


def export_tflite(
    workdir, output_dir, variants=VARIANTS, num_calibration=64, postprocess="box"
):
    """Converts a workdir's model to every variant; writes a manifest.

    Files: ``<output_dir>/<method>_<backbone>_<variant>.tflite`` and
    ``tflite_manifest.json`` (sizes, I/O, threshold, class names).

    Args:
        workdir: a wsol-train workdir.
        output_dir: folder for the files.
        variants: subset of VARIANTS.
        num_calibration: training images for ``int8`` calibration.
        postprocess: most in-graph post-processing to try (see `convert`).

    Returns:
        The manifest dict.
    """
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown TFLite variants {unknown}; expected {VARIANTS}")
    model, config, data_info = workdir_lib.load_model(workdir)
    map_method = config.eval.get("map_method", "cam")
    topk = int(config.eval.get("topk", 1)) if map_method == "topk" else 1
    threshold, source_name = serving.resolve_cam_threshold(workdir, config)
    size = int(config.data.image_size)
    calibration = None
    if "int8" in variants:
        from wsol_keras import data as data_lib  # pylint: disable=g-import-not-at-top

        calibration = representative_images(
            data_lib.get_source(config.data), num_calibration
        )
    os.makedirs(output_dir, exist_ok=True)
    name = serving.default_model_name(config)
    manifest = {
        "model_name": name,
        "input_size": size,
        "class_names": list(data_info.get("class_names", [])),
        "cam_threshold": threshold,
        "cam_threshold_source": source_name,
        "heatmap": (
            f"mean map of the top-{topk} classes"
            + (
                " (DGL / Grad-CAM need gradients: CAM maps here)"
                if map_method not in ("cam", "topk")
                else ""
            )
        ),
        "topk": topk,
        "variants": {},
    }
    for variant in variants:
        content, info = convert(
            model,
            size,
            variant,
            threshold,
            calibration,
            postprocess=postprocess,
            topk=topk,
        )
        path = os.path.join(output_dir, f"{name}_{variant}.tflite")
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(content)
        os.replace(tmp, path)
        lite = LiteRTModel(content)
        info.update(
            {
                "file": os.path.basename(path),
                "bytes": len(content),
                "input_dtype": np.dtype(lite.input_dtype).name,
                "outputs": sorted(lite.runner.get_output_details()),
            }
        )
        manifest["variants"][variant] = info
    workdir_lib.write_json_atomic(os.path.join(output_dir, MANIFEST_FILE), manifest)
    return manifest
