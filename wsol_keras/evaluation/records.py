"""Evaluation records: one metrics record per evaluation, and the one an export uses.

Layout of a workdir (``W``):

    W/metrics.json, W/heatmaps.png, W/box_accuracy.png
        the training report, written once by `wsol-train`; `wsol-eval` never
        writes it;
    W/eval/<key>/metrics.json, heatmaps.png, box_accuracy.png
        one folder per evaluation, ``<key>`` = ``<split>-<map_method>``
        [``-<layer>``] [``-n<scorecam_channels>``] [``-top<K>``] [``-<box_method>``] [``-original``]
        [``-tencrop``] [``-thr<fixed threshold>``]
        [``-max<max_images>``] (`record_key`); the training report's evaluation
        is also recorded there (``eval/test-<map_method>...``).

Every record states what was measured and with what: ``split``,
``map_method``, ``layer`` (layer maps; else None), ``topk`` (top-K maps),
``scorecam_channels`` (Score-CAM's channel cap; else None),
``cam_threshold`` and ``cam_threshold_source`` (`VAL_SEARCH`: box accuracy
argmax on ``threshold_split``; `FIXED`: config / ``--cam_threshold``;
`FALLBACK`: no boxes to search on), ``num_images`` (all images evaluated) and
``num_images_with_boxes`` (the localization metrics' denominator: images
without a box are left out of them), ``max_images`` (the limit used, on the
threshold search and the split alike) and the sha256 of the weights file
(``weights_sha256``), and which training checkpoint those weights are
(``checkpoint``: "best" or "last", ``checkpoint_epoch``,
``checkpoint_selection_metric`` / ``_score`` / ``_split``: the val score that
chose it; from ``W/selected_checkpoint.json``, written by `wsol-train` with
the final weights, see `wsol_keras.training.checkpoint_selection`; None when the file is
absent or describes other weights).

Exports (`find_export_record`) take the CAM threshold from the record that
matches the map method, layer and top-K they export, the sha256 of the weights
they load, the workdir config's ``eval.max_images`` (a ``--max_images``
scratch run never gives the served threshold) and the config's threshold rule
(searched on val, or fixed); the test split's record first. With none they
stop with the exact `wsol-eval` command that writes one.

Workdirs written before records existed have only ``W/metrics.json`` without
``weights_sha256`` (`is_legacy`). It is used when its ``map_method`` (absent:
"cam") matches, with a warning and the source
``LEGACY_SOURCE``: such a file records neither split, layer, image count nor
weights, and an old `wsol-eval` may have overwritten it.
"""

import hashlib
import json
import os
import re
import tempfile

from absl import logging

from wsol_keras.localization import maps
from wsol_keras.localization.cam_family import SCORECAM_DEFAULT_CHANNELS
from wsol_keras.localization.dual_gradient import METHODS_DGL

EVAL_DIR = "eval"
RECORD_FILE = "metrics.json"
REPORT_FILE = "metrics.json"  # the training report at the workdir root
VAL_SEARCH = "val search"
FIXED = "fixed"
FALLBACK = "fallback"
LEGACY_SOURCE = "metrics.json (legacy: no weights hash, split or layer recorded)"
_SPLIT_PREFERENCE = ("test", "val")


# workdir.WEIGHTS_FILE (not imported: the workdir module imports the models).
WEIGHTS_FILE = "model.weights.h5"
# Which epoch the final weights were trained to and why (val_localization).
SELECTED_CHECKPOINT_FILE = "selected_checkpoint.json"
# record field <- field of selected_checkpoint.json
_CHECKPOINT_FIELDS = {
    "checkpoint": "checkpoint",
    "checkpoint_epoch": "epoch",
    "checkpoint_selection_metric": "metric",
    "checkpoint_selection_score": "score",
    "checkpoint_selection_split": "split",
}


def weights_of(workdir):
    """(sha256, path) of a workdir's final weights; (None, None) if absent."""
    path = os.path.join(workdir, WEIGHTS_FILE)
    if not os.path.exists(path):
        logging.warning("%s not found: no weights hash to record or match", path)
        return None, None
    return weights_sha256(path), path


def weights_sha256(path):
    """Hex sha256 of a file (the weights an evaluation or export loaded)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def layer_of(config):
    """The map's layer path (gradient map methods), else None."""
    e = config.eval
    if e.get("map_method", "cam") in METHODS_DGL:
        return e.get("dgl_layer", "") or None
    return None


def scorecam_channels_of(config):
    """Score-CAM's channel cap N (part of the map's identity), else None."""
    e = config.eval
    if e.get("map_method", "cam") != "scorecam":
        return None
    return int(e.get("scorecam_channels", SCORECAM_DEFAULT_CHANNELS))


def topk_of(config):
    e = config.eval
    return e.get("topk", 1) if e.get("map_method", "cam") == "topk" else None


def _slug(text):
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(text)).strip("._") or "_"


def record_key(split, config, max_images=None):
    """The folder name of one evaluation under ``W/eval/`` (see module doc).

    `max_images`: a ``--max_images`` override (a scratch run gets its own
    folder); the config's own ``eval.max_images`` is not part of the key.
    """
    e = config.eval
    # "+" -> "p": "gradcam++" must not share "gradcam"'s folder.
    parts = [_slug(split), _slug(str(e.get("map_method", "cam")).replace("+", "p"))]
    layer = layer_of(config)
    if layer:
        parts.append(_slug(layer))
    if scorecam_channels_of(config) is not None:
        parts.append(f"n{scorecam_channels_of(config)}")
    if topk_of(config) is not None:
        parts.append(f"top{_slug(topk_of(config))}")
    # The papers' protocol options (wsol_keras.evaluation.protocol), when not the default.
    if e.get("box_method", "largest_contour") != "largest_contour":
        parts.append(_slug(e.get("box_method")))
    if e.get("image_size_mode", "fixed") != "fixed":
        parts.append(_slug(e.get("image_size_mode")))
    if e.get("ten_crop", False):
        parts.append("tencrop")
        if e.get("ten_crop_maps", "single") != "single":
            parts.append("maps" + _slug(e.get("ten_crop_maps")))
    if e.get("cam_threshold", None) is not None:
        parts.append(f"thr{float(e.cam_threshold):g}")
    if max_images:
        parts.append(f"max{int(max_images)}")
    return "-".join(parts)


def record_dir(workdir, key):
    return os.path.join(workdir, EVAL_DIR, key)


def check_writable(directory):
    """Creates `directory` and a file in it, or raises PermissionError naming it.

    Called before an evaluation, so a read-only workdir fails in a second and
    not after the whole evaluation.
    """
    try:
        os.makedirs(directory, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=directory, prefix=".tmp-probe-")
        os.close(fd)
        os.remove(probe)
    except OSError as e:
        raise PermissionError(
            f"{directory}: cannot write the evaluation report there ({e}); "
            "make the workdir writable (or copy it somewhere writable) first"
        ) from e


def selected_checkpoint(weights_file, weights_hash):
    """Record fields naming the training checkpoint `weights_file` holds.

    Read from ``selected_checkpoint.json`` beside the weights; all None when
    it is absent (older workdirs) or its sha256 is not `weights_hash` (the
    weights were replaced after training).
    """
    out = dict.fromkeys(_CHECKPOINT_FIELDS)
    if not weights_file:
        return out
    path = os.path.join(os.path.dirname(weights_file), SELECTED_CHECKPOINT_FILE)
    if not os.path.isfile(path):
        return out
    info = _read(path)
    if info.get("weights_sha256") != weights_hash:
        logging.warning(
            "%s describes other weights (sha256 %s, %s has %s): the evaluation "
            "record names no checkpoint",
            path,
            str(info.get("weights_sha256"))[:12],
            weights_file,
            str(weights_hash)[:12],
        )
        return out
    return {key: info.get(field) for key, field in _CHECKPOINT_FIELDS.items()}


def provenance(split, config, max_images_override, weights_hash, weights_file):
    """Record fields that the evaluation itself does not know."""
    max_images = config.eval.get("max_images", None)
    return {
        **selected_checkpoint(weights_file, weights_hash),
        "split": split,
        "map_method": config.eval.get("map_method", "cam"),
        "layer": layer_of(config),
        "topk": topk_of(config),
        "scorecam_channels": scorecam_channels_of(config),
        "max_images": int(max_images) if max_images else None,
        "weights_file": os.path.basename(weights_file) if weights_file else None,
        "weights_sha256": weights_hash,
        "record_key": record_key(split, config, max_images_override),
    }


def is_legacy(metrics):
    return "weights_sha256" not in metrics


def _read(path):
    with open(path) as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON ({e})") from e


def list_records(workdir):
    """[(path, record)] of ``W/eval/*/metrics.json``, sorted by path."""
    base = os.path.join(workdir, EVAL_DIR)
    if not os.path.isdir(base):
        return []
    out = []
    for name in sorted(os.listdir(base)):
        path = os.path.join(base, name, RECORD_FILE)
        if os.path.isfile(path):
            out.append((path, _read(path)))
    return out


def eval_command(workdir, config, split="test"):
    """The `wsol-eval` command line that writes the record an export needs."""
    e = config.eval
    parts = ["wsol-eval", f"--workdir={workdir}", f"--split={split}"]
    parts.append(f"--map_method={e.get('map_method', 'cam')}")
    if layer_of(config):
        parts.append(f"--dgl_layer={layer_of(config)}")
    if scorecam_channels_of(config) is not None:
        parts.append(f"--scorecam_channels={scorecam_channels_of(config)}")
    if _export_protocol_differs(e):
        parts.append("--image_size_mode=fixed --ten_crop=false")
    return " ".join(parts)


def _export_protocol_differs(eval_config):
    """Whether `eval_config`'s records score other maps than an export makes
    (exports localize at S x S from one image)."""
    return eval_config.get("image_size_mode", "fixed") != "fixed" or bool(
        eval_config.get("ten_crop", False)
    )


def _mismatch(record, config, weights_hash):
    """Why `record` cannot give an export its threshold (None: it can)."""
    e = config.eval
    want = {
        "map_method": e.get("map_method", "cam"),
        "layer": layer_of(config),
        "topk": topk_of(config),
        "scorecam_channels": scorecam_channels_of(config),
        "weights_sha256": weights_hash,
    }
    for field, value in want.items():
        if record.get(field) != value:
            return f"{field}={record.get(field)!r} (export: {value!r})"
    # Exports make S x S maps of one image: a threshold searched on maps
    # resized to each original image, or on maps averaged over ten crops,
    # belongs to another protocol (wsol_keras.evaluation.protocol).
    if record.get("image_size_mode", "fixed") != "fixed":
        return (
            f"image_size_mode={record['image_size_mode']!r} (export: 'fixed', "
            "maps at data.image_size)"
        )
    # Records written before ten_crop_maps existed averaged DGL maps.
    averaged = "average" if record.get("map_method") == "dgl" else "single"
    if record.get("ten_crop") and record.get("ten_crop_maps", averaged) == "average":
        return "ten_crop=True (maps averaged over crops; export: one image)"
    limit = e.get("max_images", None) or None
    if (record.get("max_images") or None) != limit:
        return (
            f"max_images={record.get('max_images')} (the workdir's config: "
            f"{limit}; a partial evaluation)"
        )
    fixed = e.get("cam_threshold", None)
    source = record.get("cam_threshold_source")
    if fixed is None and source == FIXED:
        return "a fixed threshold (the config searches it on val)"
    if fixed is not None and (
        source != FIXED or abs(float(record["cam_threshold"]) - float(fixed)) > 1e-9
    ):
        return f"cam_threshold={record['cam_threshold']} (config fixes {fixed})"
    return None


def finished_report(workdir, config):
    """W/metrics.json when it evaluated `config`'s test protocol on the
    workdir's current weights (same map, layer, K, weights sha256, image
    limit and threshold rule), else None: a rerun of a finished wsol-train
    reuses it instead of evaluating again."""
    path = os.path.join(workdir, REPORT_FILE)
    weights = os.path.join(workdir, WEIGHTS_FILE)
    if not (os.path.isfile(path) and os.path.isfile(weights)):
        return None
    try:
        record = _read(path)
    except ValueError:
        return None
    if is_legacy(record) or record.get("split") != "test":
        return None
    if _mismatch(record, config, weights_sha256(weights)):
        return None
    return record


def find_export_record(workdir, config, weights_hash):
    """The evaluation record whose threshold an export of `config` uses.

    Args:
        workdir: a wsol-train workdir.
        config: the config being exported (its ``eval`` map method, layer, K).
        weights_hash: sha256 of the weights the export loaded.

    Returns:
        (path, record): the matching record, the test split's first.

    Raises:
        LookupError: no record matches; the message lists the records seen and
            the `wsol-eval` command that writes one.
    """
    rejected = []
    matches = []
    for path, record in list_records(workdir):
        why = _mismatch(record, config, weights_hash)
        if why:
            rejected.append(f"  {path}: {why}")
        else:
            matches.append((path, record))
    if matches:
        rank = lambda m: (  # noqa: E731
            _SPLIT_PREFERENCE.index(m[1]["split"])
            if m[1].get("split") in _SPLIT_PREFERENCE
            else len(_SPLIT_PREFERENCE)
        )
        return min(matches, key=rank)
    legacy = os.path.join(workdir, REPORT_FILE)
    if os.path.isfile(legacy):
        record = _read(legacy)
        if is_legacy(record) and "cam_threshold" in record:
            method = record.get("map_method", "cam")
            if method == config.eval.get("map_method", "cam"):
                logging.warning(
                    "%s has no weights hash, split or layer (written before "
                    "evaluation records); using its cam_threshold %s. Run `%s` "
                    "to record one.",
                    legacy,
                    record["cam_threshold"],
                    eval_command(workdir, config),
                )
                return legacy, record
            rejected.append(f"  {legacy}: map_method={method!r} (legacy file)")
    seen = "\n".join(rejected) if rejected else "  (no evaluation records)"
    raise NoMatchingRecord(
        f"{workdir}: no evaluation record matches this export (map_method="
        f"{config.eval.get('map_method', 'cam')!r}, layer={layer_of(config)!r}, "
        f"weights sha256 {str(weights_hash)[:12]}..., max_images="
        f"{config.eval.get('max_images', None)}). Records seen:\n"
        f"{seen}\nWrite one with:\n  {eval_command(workdir, config)}"
    )


class NoMatchingRecord(LookupError, ValueError):
    """No evaluation record for an export (a ValueError too: the tools print
    its message, which names the `wsol-eval` command, as their one-line error)."""


def threshold_source_label(path, record, workdir):
    """'val search (eval/test-cam/metrics.json)' style label for cards/manifests."""
    if is_legacy(record):
        return LEGACY_SOURCE
    rel = os.path.relpath(path, workdir)
    return f"{record.get('cam_threshold_source', '?')} ({rel})"


def resolve_cam_threshold(workdir, config, required=False):
    """Returns (threshold, source) for a box step outside the evaluator.

    Args:
        workdir: a wsol-train workdir (may be None).
        config: its ConfigDict (the map method / layer whose threshold is meant).
        required: raise when the workdir has no matching evaluation record
            (exports) instead of falling back.

    Returns:
        (float, str): the threshold of the workdir's evaluation record that
        matches the config's map method, layer and the workdir's weights
        (`wsol_keras.evaluation.find_export_record`; source e.g.
        "val search (eval/test-cam/metrics.json)"), else
        ``config.eval.cam_threshold`` ("config.eval.cam_threshold"), else
        `maps.FALLBACK_CAM_THRESHOLD` ("default").

    Raises:
        LookupError: `required` and no matching record (the message gives the
            `wsol-eval` command that writes one).
    """
    if workdir:
        digest, _ = weights_of(workdir)
        try:
            path, record = find_export_record(workdir, config, digest)
        except LookupError:
            if required:
                raise
            logging.warning(
                "%s: no evaluation record for map_method=%r; using the "
                "config's or the default CAM threshold",
                workdir,
                config.eval.get("map_method", "cam"),
            )
        else:
            return (
                maps.check_cam_threshold(record["cam_threshold"], path),
                threshold_source_label(path, record, workdir),
            )
    value = config.eval.get("cam_threshold", None)
    if value is not None:
        return (
            maps.check_cam_threshold(value, "config.eval.cam_threshold"),
            "config.eval.cam_threshold",
        )
    return maps.FALLBACK_CAM_THRESHOLD, "default"
