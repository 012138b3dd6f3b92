"""Versioned, atomic TF Serving SavedModel with a model card.

Layout (TF Serving's model base path): ``<export_base>/<model_name>/<version>/``
with ``saved_model.pb``, ``variables/``, ``assets/model_card.json`` and
``assets/config.json``; signatures ``serving_default`` (= ``image_bytes``),
``image_bytes`` and ``image_tensor`` of `inference.InferenceModule`.

Why a hand-built ``tf.Module`` and not ``keras.export.ExportArchive``:
ExportArchive assembles endpoints and variables the same way (it tracks the
variables and saves tf.functions), but its ``track()`` only keeps
``TrackableResource`` objects (lookup tables); it cannot attach named
``tf.saved_model.Asset`` files to the SavedModel root, so the model card and
config would not travel as assets (``loaded.model_card.asset_path``). The
root here holds exactly what ExportArchive's would (the backing
``tf.Variable``s and the tf.functions) plus the two assets.

The CAM threshold is the one of the workdir's evaluation record for the
exported map method, layer and weights (`wsol_keras.evaluation.records`); without
one `wsol-export` stops and names the `wsol-eval` command that writes it.

Replacing a version (``overwrite``) never leaves the model folder without it:
the new version is written to a hidden ``.tmp-*`` folder and swapped in with
one ``renameat2(RENAME_EXCHANGE)`` call on Linux (else: rename the old one
aside, rename the new one in, then delete the old; a run killed between the
two renames gets the old version restored by the next export). Temporary
folders of killed exports are removed on the next export (`temp_files`).
Outputs are local paths: a URL (``gs://``, ``s3://``...) is refused; export
locally and copy the version folder.
"""

import datetime
import json
import os
import ctypes
import errno
import re
import shutil
import tempfile

from absl import logging
import keras
import tensorflow as tf

from wsol_keras.evaluation import records
from wsol_keras.localization import maps as localization
from wsol_keras.training import temp_files
from wsol_keras.training import workdir as workdir_lib
from wsol_keras.export import inference

SIGNATURES = ("serving_default", "image_bytes", "image_tensor")
MODEL_CARD_FILE = "model_card.json"
CONFIG_ASSET_FILE = "config.json"


def workdir_threshold(workdir, config):
    """(threshold, source label, record, record path) of the exported map.

    Raises:
        LookupError: no evaluation record matches (see
            `records.find_export_record`).
    """
    weights = workdir_lib.final_weights_path(workdir)
    if not os.path.exists(weights):
        raise FileNotFoundError(
            f"{weights} not found: training in {workdir!r} did not finish"
        )
    digest = records.weights_sha256(weights)
    path, record = records.find_export_record(workdir, config, digest)
    threshold = localization.check_cam_threshold(record["cam_threshold"], path)
    return threshold, records.threshold_source_label(path, record, workdir), (
        record,
        path,
    )


def tf_variables(model):
    """The tf.Variables under a Keras model's variables (what a SavedModel tracks).

    Tracking the backing `tf.Variable`s rather than the Keras wrappers (as
    ExportArchive does) lets the TFLite converter freeze them into constants
    (with the wrappers it leaves READ_VARIABLE ops that LiteRT cannot run).
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
    eval_record=None,
    max_image_pixels=inference.DEFAULT_MAX_IMAGE_PIXELS,
):
    """The model card shipped as an asset (JSON-serializable dict).

    `metrics`: the test split's record of the exported map (or None);
    `eval_record`: where the threshold came from (path, split, weights hash).
    """
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
        "max_image_pixels": int(max_image_pixels),
        "map_method": config.eval.get("map_method", "cam"),
        "cam_threshold": float(cam_threshold),
        "cam_threshold_source": threshold_source,
        "eval_record": eval_record,
        "test_metrics": metrics or None,
        "signatures": {
            "serving_default": "alias of image_bytes",
            "image_bytes": "images: string [B] encoded JPEG/PNG/GIF/BMP/WebP",
            "image_tensor": "images: uint8 [B, H, W, 3] RGB",
            "errors": "INVALID_ARGUMENT naming the batch position for an empty "
            "batch, an undecodable, truncated or empty image, one over "
            "max_image_pixels (H x W, read from its header before decoding) "
            "or a request of another shape",
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
    """``<method>_<backbone>``; keras_hub:<...> gives keras_hub_<last path part>."""
    backbone = str(config.model.backbone)
    if backbone.startswith("keras_hub:"):
        target = os.path.basename(os.path.normpath(backbone[len("keras_hub:"):]))
        backbone = "keras_hub_" + re.sub(r"[^A-Za-z0-9_.-]", "_", target)
    return f"{config.method.name}_{backbone}"


_MODEL_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def check_model_name(model_name):
    """A served name is one plain folder name (no '.', '..', separators)."""
    if not _MODEL_NAME.fullmatch(model_name or ""):
        raise ValueError(
            f"model_name={model_name!r}: use letters, digits, '_', '.', '-' only, "
            "starting with a letter, digit or '_' (one folder name)"
        )
    return model_name


def check_local_output(path, flag="--output"):
    """Refuses URLs: they would become local folders named like 'gs:'."""
    if _URL.match(str(path)):
        raise ValueError(
            f"{flag}={path!r}: remote outputs are not supported (the atomic "
            "version swap needs a local file system); export to a local folder, "
            "then copy the version folder, e.g. `gsutil -m cp -r "
            "LOCAL/<model_name>/<version> gs://bucket/models/<model_name>/` "
            "(copy under a non-numeric name and rename it last if a server "
            "watches the bucket)"
        )
    return path


def _fault_point(name):
    """No-op; the fault tests stop the process here (kill between steps)."""
    del name


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(a, b):
    """Atomically swaps two paths (Linux renameat2); False when unsupported."""
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    result = renameat2(
        _AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE
    )
    if result == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EXDEV):
        return False
    raise OSError(err, os.strerror(err), f"{a} <-> {b}")


_ASIDE = re.compile(r"^\.tmp-\d+@[^~/]+~old-(\d+)$")


def recover_interrupted(model_dir):
    """Restores versions a killed swap left aside; removes orphaned temps.

    Returns:
        (restored version paths, removed temporary paths).
    """
    restored = []
    if os.path.isdir(model_dir):
        for name in sorted(os.listdir(model_dir)):
            m = _ASIDE.match(name)
            path = os.path.join(model_dir, name)
            if not m or not temp_files.is_orphan(path):
                continue
            target = os.path.join(model_dir, m.group(1))
            if not os.path.exists(target):
                os.rename(path, target)
                logging.warning(
                    "restored %s from %s (an interrupted --overwrite)", target, path
                )
                restored.append(target)
    removed = temp_files.remove_orphans(model_dir, folders=True, weights_files=False)
    return restored, removed


def install_version(staged, target):
    """Moves the finished SavedModel `staged` to `target`, replacing it safely."""
    if not os.path.exists(target):
        os.rename(staged, target)
        return
    if _exchange(staged, target):  # `staged` now holds the old version
        _fault_point("after_swap")
        shutil.rmtree(staged)
        return
    aside = os.path.join(
        os.path.dirname(target),
        temp_files.temp_prefix("old-") + os.path.basename(target),
    )
    os.rename(target, aside)
    _fault_point("after_aside")
    os.rename(staged, target)
    _fault_point("after_swap")
    shutil.rmtree(aside)


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
    top_k=inference.DEFAULT_TOP_K,
    heatmap_size=None,
    overwrite=False,
    eval_record=None,
    max_image_pixels=inference.DEFAULT_MAX_IMAGE_PIXELS,
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
            `localization.FALLBACK_CAM_THRESHOLD`).
        threshold_source: recorded in the model card.
        metrics: test metrics for the model card (or None).
        top_k: classes returned per image.
        heatmap_size: side of the returned heat maps (default S).
        overwrite: replace an existing version folder.
        eval_record: provenance of the threshold for the model card.
        max_image_pixels: largest H x W of a request image (model card).

    Returns:
        The version folder's path.
    """
    model_name = check_model_name(model_name or default_model_name(config))
    check_local_output(export_base)
    if cam_threshold is None:
        cam_threshold, threshold_source = records.resolve_cam_threshold(
            None, config
        )
    model_dir = os.path.join(export_base, model_name)
    version = next_version(model_dir) if version is None else int(version)
    if version < 1:
        raise ValueError(f"version={version}: TF Serving versions are positive ints")
    target = os.path.join(model_dir, str(version))
    if os.path.exists(target) and not overwrite:
        raise FileExistsError(f"{target} exists; pass a new version or overwrite=True")
    os.makedirs(model_dir, exist_ok=True)
    recover_interrupted(model_dir)

    module = inference.InferenceModule(
        model,
        config,
        cam_threshold,
        top_k=top_k,
        heatmap_size=heatmap_size,
        max_image_pixels=max_image_pixels,
    )
    card = make_model_card(
        config,
        data_info,
        cam_threshold,
        threshold_source,
        metrics,
        model_name,
        module.top_k,
        module.heatmap_size,
        max_image_pixels=module.max_image_pixels,
        eval_record=eval_record,
    )
    tmp = tempfile.mkdtemp(dir=model_dir, prefix=temp_files.temp_prefix(f"v{version}-"))
    try:
        staging = os.path.join(tmp, "assets_src")
        os.makedirs(staging)
        card_path = os.path.join(staging, MODEL_CARD_FILE)
        config_path = os.path.join(staging, CONFIG_ASSET_FILE)
        workdir_lib.write_json_atomic(card_path, card)
        workdir_lib.write_json_atomic(
            config_path, {"config": config.to_dict(), "data_info": data_info}
        )
        root = tf.Module()
        root.model_variables = tf_variables(model)
        root.model_card = tf.saved_model.Asset(card_path)
        root.config = tf.saved_model.Asset(config_path)
        root.image_bytes = module.image_bytes
        root.image_tensor = module.image_tensor
        bytes_fn = module.image_bytes.get_concrete_function()
        out = os.path.join(tmp, "saved_model")
        tf.saved_model.save(
            root,
            out,
            signatures={
                "serving_default": bytes_fn,
                "image_bytes": bytes_fn,
                "image_tensor": module.image_tensor.get_concrete_function(),
            },
        )
        _fault_point("before_swap")
        install_version(out, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def export_saved_model(
    workdir,
    export_base,
    model_name=None,
    version=None,
    top_k=inference.DEFAULT_TOP_K,
    heatmap_size=None,
    overwrite=False,
    max_image_pixels=inference.DEFAULT_MAX_IMAGE_PIXELS,
):
    """`wsol-export`: rebuilds a workdir's model and exports it (see export_model).

    Returns:
        The version folder's path.
    """
    check_local_output(export_base)
    if model_name is not None:
        check_model_name(model_name)
    config, _ = workdir_lib.read_config(workdir)
    # Before the model is built: a missing record fails in a second.
    threshold, source, (record, record_path) = workdir_threshold(workdir, config)
    for folder in (workdir, os.path.join(workdir, workdir_lib.CHECKPOINT_DIR)):
        temp_files.remove_orphans(folder, folders=False, weights_files=True)
    model, config, data_info = workdir_lib.load_model(workdir)
    test_split = record.get("split") == "test" or records.is_legacy(record)
    return export_model(
        model,
        config,
        data_info,
        export_base,
        model_name=model_name,
        version=version,
        cam_threshold=threshold,
        threshold_source=source,
        metrics=record if test_split else None,
        eval_record={
            "path": os.path.relpath(record_path, workdir),
            "split": record.get("split"),
            "weights_sha256": record.get("weights_sha256"),
        },
        top_k=top_k,
        heatmap_size=heatmap_size,
        overwrite=overwrite,
        max_image_pixels=max_image_pixels,
    )


def read_model_card(saved_model_dir):
    """The model card of an exported version folder."""
    path = os.path.join(saved_model_dir, "assets", MODEL_CARD_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} not found: not a wsol-export SavedModel?")
    with open(path) as f:
        return json.load(f)
