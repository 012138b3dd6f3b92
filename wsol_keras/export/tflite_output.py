"""The TFLite output folder: one model per `tflite_manifest.json`, never clobbered.

An export into a folder that already holds a manifest either adds to it or is
refused before anything is converted:

* the same model (every manifest field but the variants equal: name, classes,
  threshold and its record, map method) adds its variants; the manifest keeps
  the variants it already listed whose files are still there;
* another model (or a manifest that cannot be read), or ``.tflite`` files the
  export would write that no manifest of this model lists, is refused naming
  the files, unless ``overwrite``: then the other model's listed files are
  removed once the new manifest is written, so the folder and its manifest
  always agree.
"""

import json
import os

MANIFEST_FILE = "tflite_manifest.json"
_PER_VARIANT = ("variants", "heatmap")


def _header(manifest):
    """The model-describing fields (JSON round trip: tuples -> lists)."""
    return json.loads(json.dumps({k: v for k, v in manifest.items() if k not in _PER_VARIANT}))


def _listed_files(manifest):
    variants = manifest.get("variants") if isinstance(manifest, dict) else None
    if not isinstance(variants, dict):
        return {}
    return {
        v: info["file"]
        for v, info in variants.items()
        if isinstance(info, dict) and isinstance(info.get("file"), str)
        and os.path.basename(info["file"]) == info["file"]  # never outside the folder
    }


def plan(output_dir, manifest, files, overwrite=False):
    """Checks `output_dir` before an export writes `files` with `manifest`.

    Args:
        output_dir: the export's folder.
        manifest: the new manifest (its "variants" may still be empty).
        files: {variant: file name} the export will write.
        overwrite: replace another model's files instead of refusing.

    Returns:
        (kept, stale): {variant: info} of the existing manifest to keep in the
        new one, and the file names to remove after the new manifest is written.

    Raises:
        FileExistsError: naming the files, when they belong to another model
            (or to no manifest) and not `overwrite`.
    """
    path = os.path.join(output_dir, MANIFEST_FILE)
    old, unreadable = None, False
    if os.path.exists(path):
        try:
            with open(path) as f:
                old = json.load(f)
            unreadable = not isinstance(old, dict)
        except (ValueError, OSError, UnicodeDecodeError):
            unreadable = True
    same = old is not None and not unreadable and _header(old) == _header(manifest)
    listed = _listed_files(old) if same or (old is not None and not unreadable) else {}
    existing = sorted(f for f in files.values() if os.path.exists(os.path.join(output_dir, f)))
    if same:
        conflicts = [f for f in existing if f not in listed.values()]
        kept = {
            v: old["variants"][v]
            for v, f in listed.items()
            if v not in files and os.path.exists(os.path.join(output_dir, f))
        }
        stale = []
    else:
        others = sorted(f for f in listed.values() if os.path.exists(os.path.join(output_dir, f)))
        conflicts = sorted(set(existing) | set(others)) + ([MANIFEST_FILE] if old is not None or unreadable else [])
        kept = {}
        stale = [f for f in others if f not in files.values()]
    if conflicts and not overwrite:
        what = (
            f"{MANIFEST_FILE} cannot be read"
            if unreadable
            else f"they belong to another model (its {MANIFEST_FILE} differs)"
            if old is not None and not same
            else f"no {MANIFEST_FILE} of this model lists them"
        )
        raise FileExistsError(
            f"{output_dir}: refusing to overwrite {', '.join(conflicts)}: {what}. "
            "Use another --output, or --overwrite to replace them (the other "
            "model's files listed in its manifest are then removed)"
        )
    return kept, stale


def remove_stale(output_dir, stale):
    """Removes the replaced model's files (after the new manifest is written)."""
    for name in stale:
        try:
            os.remove(os.path.join(output_dir, name))
        except FileNotFoundError:
            pass
