"""TFLite export: the inference graph at a fixed size, four precisions.

Variants (`VARIANTS`):
    * ``float32``: no quantization;
    * ``float16``: float16 weights (computed in float32 on CPU);
    * ``dynamic_int8``: int8 weights, activations quantized on the fly;
    * ``int8``: full integer quantization, calibrated on images of the training
      split (`representative_images`); uint8 image input (pixels are exact with
      the calibrated scale 1, zero point 0), float32 outputs (dequantized).

Every variant runs `inference.InferenceModule.tflite_function` (the same graph
as the SavedModel: `wsol_keras.localization.maps` for the map, predicted top-1
class) on one image [1, S, S, 3] in [0, 255] (float32, or uint8 for
``int8``) and returns ``logits`` [1, C], ``cams`` [1, h, w, C] (and
``localizer_logits`` for SLT-Net, which rank its top-K map). The float variants
also return ``heatmap`` [1, S, S] and, when its ops convert to TFLite builtins,
``box`` [1, 4] (xyxy in the S x S frame; the regressor's box for models that
predict one). Levels whose ops do not convert fall back to the next one and
the manifest records which level converted and why. The int8 variant returns
logits and cams only (min-max normalization and the box loop are not integer
ops), plus the regressor's box for models that have one. `postprocess`
computes heat map and box on the host from those outputs with the evaluator's
own map path and cv2 box.

Gradient maps (``dgl``, ``pcs``, ``gradcam``, ``gradcam++``, ``xgradcam``,
``layercam``, ``hirescam``): their tf.GradientTape is traced into the graph;
when those gradient ops convert (they do for the package's small CNN with TF
2.21: the backward of a convolution is a TRANSPOSE_CONV), the TFLite heat map
is the real gradient map. When they do not, the model carries no heat map, the
manifest's ``heatmap`` says so, and `postprocess` refuses (it cannot compute
gradients from ``cams``): a gradient model never silently gets CAM maps.
``eigencam`` (matrix products, no SVD op) and ``scorecam`` (a WHILE loop of
masked forward passes) need no gradients and convert to builtins; their maps
need the layer's activations, so `postprocess` cannot rebuild them either.
`export_tflite` with ``map_method="auto"`` (wsol-export-tflite's default)
ships the config's map when it converts, else the CAM map of the same
weights (the predicted class's class activation map, Zhou et al. 2016, Eq. 2)
with the threshold of its own evaluation record; the manifest's
``map_method``, ``config_map_method``, ``map_fallback`` and ``heatmap`` say
which map the files carry and why.
"""

import copy

import contextlib
import os
import shutil
import sys
import tempfile

import numpy as np
import tensorflow as tf

from wsol_keras import data as data_lib
from wsol_keras.evaluation import records as eval_records
from wsol_keras.localization import maps as localization
from wsol_keras.training import workdir as workdir_lib
from wsol_keras.export import tflite_output
from wsol_keras.export import inference
from wsol_keras.export import saved_model_lib
from wsol_keras.export.tflite_host import LiteRTModel  # noqa: F401  (re-exported)
from wsol_keras.export.tflite_host import postprocess  # noqa: F401  (re-exported)

VARIANTS = ("float32", "float16", "dynamic_int8", "int8")
MANIFEST_FILE = tflite_output.MANIFEST_FILE
POSTPROCESS_LEVELS = inference.POSTPROCESS_LEVELS


def representative_images(source, num_images=64, split="train"):
    """uint8 [N, S, S, 3] images of a split (calibration data for ``int8``)."""
    batches = [
        b["image"].numpy() for b in source.dataset(split).take(num_images).batch(64)
    ]
    if not batches:
        raise ValueError(f"split {split!r} has no images for int8 calibration")
    return np.concatenate(batches)


def convert(module, variant, calibration_images=None, postprocess="box"):
    """Converts an `inference.InferenceModule` to one TFLite variant.

    Args:
        module: the inference graph (model, map method, CAM threshold).
        variant: one of VARIANTS.
        calibration_images: uint8 [N, S, S, 3] (required for ``int8``).
        postprocess: the most post-processing to try in the graph ("box",
            "heatmap" or "none"; float variants only): levels whose ops do not
            convert to TFLite builtins fall back to the next one.

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
    for level in attempts:
        fn = module.tflite_function(
            postprocess=level, input_dtype=tf.uint8 if full_int8 else tf.float32
        )
        # Through a SavedModel, as keras.export's LiteRT path: the converter
        # freezes the variables of a SavedModel into constants.
        tmp = tempfile.mkdtemp(prefix="wsol-tflite-")
        try:
            root = tf.Module()
            root.model_variables = saved_model_lib.tf_variables(module.model)
            root.fn = fn
            tf.saved_model.save(
                root, tmp, signatures={"serving_default": fn.get_concrete_function()}
            )
            converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
            with _captured_stderr():
                content = _configure_and_convert(
                    converter, variant, calibration_images
                )
        except Exception as e:  # pylint: disable=broad-except
            # The converter raises ConverterError (not exported) for ops without
            # a builtin kernel; retry without the post-processing ops.
            last_error = e
            continue
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return content, {
            "variant": variant,
            "postprocess_in_graph": level,
            "conversion_fallback": _short_error(last_error),
        }
    raise RuntimeError(f"TFLite conversion of variant {variant!r} failed: {last_error}")


@contextlib.contextmanager
def _captured_stderr():
    """Holds back what the converter writes to file descriptor 2.

    The MLIR converter prints one "error:" diagnostic per unsupported op (over
    a hundred lines for the in-graph box loop) straight to the C-level stderr,
    even when the next post-processing level then converts fine. They are
    kept in the yielded list (one string) instead, and let through when
    `WSOL_TFLITE_VERBOSE=1`; the converter's exception carries the same
    diagnostics, so a level that fails is still explained (manifest's
    ``conversion_fallback``, or the error when no level converts).
    """
    captured = []
    if os.environ.get("WSOL_TFLITE_VERBOSE", "") not in ("", "0"):
        yield captured
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured.append(sink.read().decode("utf-8", "replace"))


def describe_variant(info):
    """One line: what converted into the graph and what the host computes."""
    level = info["postprocess_in_graph"]
    host = {
        "box": "nothing (heat map and box in the graph)",
        "heatmap": "the box (wsol_keras.export.tflite_lib.postprocess)",
        "none": "heat map and box (wsol_keras.export.tflite_lib.postprocess)",
    }[level]
    map_method = info.get("map_method", "cam")
    if level == "none" and map_method in localization.GRADIENT_MAP_METHODS:
        host = (
            f"no heat map and no box: the {map_method} map needs gradients, "
            "which this variant does not carry"
        )
    elif map_method:
        host += f"; map: {map_method}"
    line = (
        f"{info['file']}: {info['bytes'] / 1024:.1f} KiB, input "
        f"{info['input_dtype']}, outputs {', '.join(info['outputs'])}; on the host: {host}"
    )
    if info.get("conversion_fallback"):
        line += f" [in-graph post-processing did not convert: {info['conversion_fallback']}]"
    return line


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


def _heatmap_note(map_method, topk, levels):
    """Manifest line: which map the TFLite models carry."""
    if map_method == "topk":
        what = f"mean map of the top-{topk} classes (SLT-Net Eq. 9 ranking)"
    elif map_method == "cam":
        what = "map of the predicted top-1 class"
    else:
        what = f"{map_method} layer map of the predicted top-1 class"
    if map_method in localization.GRADIENT_MAP_METHODS and any(
        level == "none" for level in levels
    ):
        return (
            f"{what}: ABSENT in the variants without a heatmap output "
            "(gradient ops did not convert); postprocess cannot rebuild it"
        )
    return what


def _with_map(config, map_method):
    """A copy of `config` whose evaluation (and export) map is `map_method`."""
    out = copy.deepcopy(config)
    with out.unlocked():
        out.eval.map_method = map_method
    return out


def export_tflite(
    workdir, output_dir, variants=VARIANTS, num_calibration=64, postprocess="box",
    map_method="auto", overwrite=False,
):
    """Converts a workdir's model to every variant; writes a manifest.

    Files: ``<output_dir>/<method>_<backbone>_<variant>.tflite`` and
    ``tflite_manifest.json`` (sizes, I/O, threshold, class names, map). The
    threshold is the one of the workdir's evaluation record for the map
    these models output (map method, layer, weights: `eval_records`);
    without one this raises LookupError naming the `wsol-eval` command.

    Args:
        workdir: a wsol-train workdir.
        output_dir: folder for the files.
        variants: subset of VARIANTS.
        num_calibration: training images for ``int8`` calibration.
        postprocess: most in-graph post-processing to try (see `convert`).
        map_method: the map the models carry: "auto" (the config's map when
            its ops convert to TFLite, else CAM) or one of
            `localization.MAP_METHODS`.
        overwrite: replace another model's files (`tflite_output.plan`).

    Returns:
        The manifest dict.
    """
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown TFLite variants {unknown}; expected {VARIANTS}")
    saved_model_lib.check_local_output(output_dir)
    if map_method not in ("auto",) + tuple(localization.MAP_METHODS):
        raise ValueError(
            f"map_method={map_method!r}: expected auto or one of {localization.MAP_METHODS}"
        )
    config, _ = workdir_lib.read_config(workdir)
    config_map = config.eval.get("map_method", "cam")
    if map_method != "auto":
        config = _with_map(config, map_method)
    # The threshold of the map these models output (its evaluation record).
    threshold, source_name, (record, record_path) = saved_model_lib.workdir_threshold(
        workdir, config
    )
    model, _, data_info = workdir_lib.load_model(workdir)
    module = inference.InferenceModule(model, config, threshold)
    fallback = None
    if map_method == "auto" and config_map in localization.GRADIENT_MAP_METHODS:
        # Probe: do this map's gradient ops convert (float32, heat map level)?
        _, probe = convert(module, "float32", postprocess="heatmap")
        if probe["postprocess_in_graph"] == "none":
            fallback = (
                f"the config's {config_map} map does not convert to TFLite "
                f"({probe['conversion_fallback']})"
            )
            config = _with_map(config, "cam")
            try:
                threshold, source_name, (record, record_path) = (
                    saved_model_lib.workdir_threshold(workdir, config)
                )
            except LookupError as e:
                raise LookupError(
                    f"{fallback}: the TFLite models carry the CAM map instead, "
                    f"whose threshold comes from its own evaluation. {e}"
                ) from None
            module = inference.InferenceModule(model, config, threshold)
    calibration = None
    if "int8" in variants:
        calibration = representative_images(
            data_lib.get_source(config.data), num_calibration
        )
    os.makedirs(output_dir, exist_ok=True)
    name = saved_model_lib.default_model_name(config)
    shipped = config.eval.get("map_method", "cam")
    manifest = {
        "model_name": name,
        "input_size": module.image_size,
        "class_names": list(data_info.get("class_names", [])),
        "cam_threshold": threshold,
        "cam_threshold_source": source_name,
        # The threshold belongs to this map: the models' "heatmap" output (or
        # `postprocess` with this map_method / topk); not to other maps.
        "cam_threshold_map_method": shipped,
        "cam_threshold_layer": eval_records.layer_of(config),
        "eval_record": {
            "path": os.path.relpath(record_path, workdir),
            "split": record.get("split"),
            "weights_sha256": record.get("weights_sha256"),
        },
        # The map the models carry, the config's, and why they differ.
        "map_method": shipped,
        "config_map_method": config_map,
        "map_fallback": fallback,
        "topk": config.eval.get("topk", 1),
        # The exported weights: tells this model from another of the same name.
        "weights_sha256": eval_records.weights_of(workdir)[0],
        "variants": {},
    }
    files = {v: f"{name}_{v}.tflite" for v in variants}
    kept, stale = tflite_output.plan(output_dir, manifest, files, overwrite)
    manifest["variants"].update(kept)
    for variant in variants:
        content, info = convert(module, variant, calibration, postprocess=postprocess)
        path = os.path.join(output_dir, files[variant])
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
                "map_method": shipped,
            }
        )
        manifest["variants"][variant] = info
    manifest["heatmap"] = _heatmap_note(
        shipped,
        manifest["topk"],
        [v["postprocess_in_graph"] for v in manifest["variants"].values()],
    )
    if fallback:
        manifest["heatmap"] += f" (CAM: {fallback})"
    workdir_lib.write_json_atomic(os.path.join(output_dir, MANIFEST_FILE), manifest)
    tflite_output.remove_stale(output_dir, stale)
    return manifest
