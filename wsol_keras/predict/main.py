r"""wsol-predict: classes, boxes and heat maps for a folder of your own images.

    wsol-predict --workdir=runs/cam --images=photos/ --output=out/
    wsol-predict --classifier=VGG16 --weights=imagenet --layer=block5_conv3 \
        --map_method=dgl --images='photos/**/*.jpg' --output=out/

Writes under --output:
    * ``scoremaps/<image_id>.npy``: float32 [S, S] map in [0, 1] of the top-1
      class (wsolevaluation's score-map layout; ``image_id`` = the image path
      relative to the image root), scorable with ``wsol-score``;
    * ``overlays/<image_id>.png``: heat map, box, class name and score, legend;
    * ``predictions.jsonl``: one JSON line per image (class ids, names,
      scores, the box in ORIGINAL-image pixels);
    * ``skipped.jsonl`` (images that could not be used, with the reason) and
      ``run.json`` (model, map method, CAM threshold and its source, counts).

Boxes: the largest contour of the map at the CAM threshold (the evaluator's
box, `wsol_keras.localization.boxes.largest_contour_box`) in the S x S frame of the model,
scaled back by W/S and H/S, the inverse of the data pipeline's direct resize.
An existing output is refused unless --overwrite; every file is written to a
temporary name and renamed.
"""

import concurrent.futures
import json
import os

from absl import flags
from absl import logging
import cv2
import keras
import numpy as np

from wsol_keras import cli
from wsol_keras import cli_flags
from wsol_keras.training import workdir as workdir_lib
from wsol_keras.localization import boxes as boxes_lib
from wsol_keras.predict import image_files
from wsol_keras.predict import predictors
OUTPUT_FILES = ("predictions.jsonl", "skipped.jsonl", "run.json", "scoremaps", "overlays")


# -- writing ------------------------------------------------------------------


def check_output(output, overwrite):
    """Refuses an output folder that holds a previous run, unless `overwrite`."""
    existing = [n for n in OUTPUT_FILES if os.path.exists(os.path.join(output, n))]
    if existing and not overwrite:
        raise FileExistsError(
            f"--output={output} already holds {', '.join(existing)}; pass "
            "--overwrite to replace them or choose another folder"
        )


def _tracked(output):
    """{relative path} of the maps and overlays the previous run's
    predictions.jsonl lists (the files this tool wrote there)."""
    path = os.path.join(output, "predictions.jsonl")
    tracked = set()
    if not os.path.isfile(path):
        return tracked
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            try:
                row = json.loads(line)
                names = [row["scoremap"], row["overlay"]]
            except (ValueError, KeyError, TypeError):
                raise ValueError(
                    f"{path}:{lineno}: not a wsol-predict record; cannot tell which "
                    "files a previous run wrote: remove the folder or use another --output"
                ) from None
            tracked.update(os.path.normpath(n) for n in names if isinstance(n, str))
    return tracked


def previous_outputs(output):
    """The previous run's maps and overlays (relative paths) that --overwrite
    may remove; raises FileExistsError naming files in scoremaps/ or
    overlays/ that no previous record lists (not ours: never removed, and a
    stale map there would be scored by wsol-score)."""
    tracked = _tracked(output)
    untracked = []
    for sub in ("scoremaps", "overlays"):
        for folder, _, files in os.walk(os.path.join(output, sub)):
            for name in files:
                rel = os.path.relpath(os.path.join(folder, name), output)
                if rel not in tracked and not name.startswith(".tmp"):
                    untracked.append(rel)
    if untracked:
        raise FileExistsError(
            f"--output={output}: {len(untracked)} file(s) in scoremaps/ or overlays/ "
            f"that no predictions.jsonl of a previous run lists, e.g. {sorted(untracked)[0]}; "
            "--overwrite replaces only files this tool wrote: remove them or use another --output"
        )
    return tracked


def original_box(box, width, height, size):
    """xyxy in the S x S model frame -> original-image pixels (x*W/S, y*H/S)."""
    sx, sy = width / float(size), height / float(size)
    x0, y0, x1, y1 = (float(v) for v in box)
    return [x0 * sx, y0 * sy, x1 * sx, y1 * sy]


MIN_OVERLAY_SIDE = 256  # small images are enlarged so the label stays legible


def _overlay_image(original, max_side):
    h, w = original.shape[:2]
    scale = max_side / float(max(h, w)) if max_side and max(h, w) > max_side else 1.0
    if max(h, w) < MIN_OVERLAY_SIDE:
        scale = MIN_OVERLAY_SIDE / float(max(h, w))
    if scale != 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        method = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_NEAREST
        return cv2.resize(original, size, interpolation=method), size[0] / float(w)
    return original, 1.0


def draw_overlay(image, scoremap, box, label, threshold):
    """uint8 RGB [H, W, 3] + map -> the overlay with box, label and a legend strip."""
    h, w = image.shape[:2]
    heat = cv2.applyColorMap(
        np.uint8(255 * np.clip(cv2.resize(scoremap, (w, h)), 0, 1)), cv2.COLORMAP_JET
    )[..., ::-1]
    out = cv2.addWeighted(np.ascontiguousarray(image), 0.5, heat, 0.5, 0.0)
    thick = max(1, round(max(h, w) / 300))
    font = max(0.35, max(h, w) / 900)
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    cv2.rectangle(out, (x0, y0), (x1, y1), (0, 255, 0), thick)
    (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, font, 1)
    cv2.rectangle(out, (0, 0), (tw + 6, th + base + 6), (0, 0, 0), -1)
    cv2.putText(out, label, (3, th + 3), cv2.FONT_HERSHEY_SIMPLEX, font,
                (255, 255, 255), 1, cv2.LINE_AA)
    # Legend below the image: colour bar of the map, then the box colour.
    strip_h = max(18, th + base + 10)
    strip = np.full((strip_h, w, 3), 255, np.uint8)
    bar_w = max(10, w // 3)
    ramp = np.linspace(0, 255, bar_w).astype(np.uint8)[None, :].repeat(strip_h - 8, 0)
    strip[4:-4, 4:4 + bar_w] = cv2.applyColorMap(ramp, cv2.COLORMAP_JET)[..., ::-1][
        :, : max(0, min(bar_w, w - 4))
    ]
    text = f"map 0..1; green box: map >= {threshold:.2f} max"
    cv2.putText(strip, text, (min(w - 1, bar_w + 8), strip_h - 6),
                cv2.FONT_HERSHEY_SIMPLEX, font * 0.8, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([out, strip], axis=0)


# -- the loop -----------------------------------------------------------------


def _load(path, size, max_pixels, overlay_max_side):
    try:
        original, resized = image_files.load_image(path, size, max_pixels)
    except (image_files.ImageError, OSError) as e:
        return path, None, str(e)
    height, width = original.shape[:2]
    small, scale = _overlay_image(original, overlay_max_side)
    return path, {"resized": resized, "width": width, "height": height,
                  "overlay": small, "overlay_scale": scale}, None


def _batches(paths, batch_size):
    for i in range(0, len(paths), batch_size):
        yield paths[i:i + batch_size]


def predict_images(predictor, paths, root, output, batch_size=16, max_pixels=None,
                   overlay_max_side=1024, overwrite=False, verbose=True):
    """Runs `predictor` over image files and writes the outputs (module docstring).

    Args:
        predictor: a `wsol_keras.predict.predictors.Predictor`.
        paths: image files; root: the folder image ids are relative to.
        output: output folder.
        batch_size: images per model call.
        max_pixels: refuse images with more pixels (header); None: the default.
        overlay_max_side: longest overlay side (0: original size).
        overwrite: replace the files of a previous run in `output`.

    Returns:
        dict with "num_images", "num_skipped", "skipped" ([(path, reason)]).
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"--batch_size={batch_size!r}: must be a positive integer")
    if max_pixels is None:
        max_pixels = image_files.DEFAULT_MAX_PIXELS
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1:
        raise ValueError(f"--max_pixels={max_pixels!r}: must be a positive integer")
    check_output(output, overwrite)
    previous = previous_outputs(output) if overwrite else set()
    os.makedirs(output, exist_ok=True)
    size, threshold = predictor.image_size, predictor.cam_threshold
    records, skipped = [], []
    bar = keras.utils.Progbar(len(paths), unit_name="image", verbose=1 if verbose else 0)
    load = lambda p: _load(p, size, max_pixels, overlay_max_side)  # noqa: E731
    # Decode the next batch in threads while the model runs on this one.
    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
        chunks = list(_batches(paths, batch_size))
        writes = []
        pending = [pool.submit(load, p) for p in chunks[0]] if chunks else []
        for index in range(len(chunks)):
            loaded = [f.result() for f in pending]
            pending = (
                [pool.submit(load, p) for p in chunks[index + 1]]
                if index + 1 < len(chunks)
                else []
            )
            good = []
            for path, item, error in loaded:
                if error:
                    logging.warning("skipped %s", error)
                    skipped.append((path, error))
                else:
                    good.append((path, item))
            if good:
                result = predictor(np.stack([item["resized"] for _, item in good]))
                # Written in the pool (cv2 and file I/O release the GIL) while
                # the model runs on the next batch.
                writes = [w.result() for w in writes]
                records.extend(writes)
                writes = [
                    pool.submit(_write_one, predictor, result, i, path, item, root,
                                output, threshold)
                    for i, (path, item) in enumerate(good)
                ]
            bar.add(len(loaded))
        records.extend(w.result() for w in writes)
    _write_lines(os.path.join(output, "predictions.jsonl"), records)
    _write_lines(
        os.path.join(output, "skipped.jsonl"),
        [{"path": p, "reason": r} for p, r in skipped],
    )
    # The previous run's maps of images not predicted now: a stale map would
    # be scored by wsol-score as this run's.
    written = {os.path.normpath(r[k]) for r in records for k in ("scoremap", "overlay")}
    for rel in sorted(previous - written):
        try:
            os.remove(os.path.join(output, rel))
        except FileNotFoundError:
            pass
    summary = dict(predictor.settings(), num_images=len(records),
                   num_skipped=len(skipped), image_root=root)
    workdir_lib.atomic_write(os.path.join(output, "run.json"),
            lambda tmp: _dump_json(tmp, summary))
    return {"num_images": len(records), "num_skipped": len(skipped), "skipped": skipped}


def _dump_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)


def _write_lines(path, rows):
    def write(tmp):
        with open(tmp, "w") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")

    workdir_lib.atomic_write(path, write)


def _write_one(predictor, result, i, path, item, root, output, threshold):
    image_id = image_files.image_id(path, root)
    scoremap = np.asarray(result["maps"][i], np.float32)
    size = predictor.image_size
    if "boxes" in result:
        box, box_source = result["boxes"][i], "regressor"
    else:
        box = boxes_lib.largest_contour_box(scoremap, threshold)
        box_source = "map"
    w, h = item["width"], item["height"]
    box_px = original_box(box, w, h, size)
    class_id = int(result["class_ids"][i])
    score = float(result["scores"][i])
    name = predictor.class_name(class_id)
    npy = os.path.join(output, "scoremaps", image_id + ".npy")
    workdir_lib.atomic_write(npy, lambda tmp: np.save(tmp, scoremap))
    overlay = draw_overlay(
        item["overlay"], scoremap, [v * item["overlay_scale"] for v in box_px],
        f"{name} {score:.2f}", threshold,
    )
    png = os.path.join(output, "overlays", image_id + ".png")
    workdir_lib.atomic_write(png, lambda tmp: _imwrite(tmp, overlay))
    return {
        "image_id": image_id,
        "path": path,
        "width": w,
        "height": h,
        "class_id": class_id,
        "class_name": name,
        "score": score,
        "box": [round(v, 2) for v in box_px],
        "box_source": box_source,
        "top5": [
            {"class_id": int(c), "class_name": predictor.class_name(int(c)),
             "score": float(s)}
            for c, s in zip(result["top5_ids"][i], result["top5_scores"][i])
        ],
        "scoremap": os.path.relpath(npy, output),
        "overlay": os.path.relpath(png, output),
    }


def _imwrite(path, rgb):
    # Fast PNG compression: the overlays are previews, written once per image.
    if not cv2.imwrite(path, np.ascontiguousarray(rgb[..., ::-1]),
                       [cv2.IMWRITE_PNG_COMPRESSION, 1]):
        raise OSError(f"cannot write {path}")


# -- CLI ----------------------------------------------------------------------

FLAGS = flags.FLAGS


define_flags = cli_flags.predict_flags


def build_predictor():
    if bool(FLAGS.workdir) == bool(FLAGS.classifier):
        raise ValueError("pass exactly one of --workdir and --classifier")
    if FLAGS.workdir:
        return predictors.from_workdir(
            FLAGS.workdir, FLAGS.map_method, FLAGS.layer, FLAGS.cam_threshold
        )
    return predictors.from_classifier(
        FLAGS.classifier,
        FLAGS.layer,
        map_method=FLAGS.map_method or "dgl",
        weights=FLAGS.weights,
        image_size=FLAGS.image_size,
        preprocess=FLAGS.preprocess,
        class_names=(
            predictors.read_class_names(FLAGS.class_names) if FLAGS.class_names else None
        ),
        cam_threshold=FLAGS.cam_threshold,
    )


def main(argv):
    del argv
    # Bad input raises; cli.guarded prints one line and exits 1.
    check_output(FLAGS.output, FLAGS.overwrite)
    paths, root = image_files.list_images(
        FLAGS.images, FLAGS.image_root, exclude=[FLAGS.output])
    predictor = build_predictor()
    print(
        f"{len(paths)} images under {root}; {predictor.description}; map "
        f"{predictor.map_method}; CAM threshold {predictor.cam_threshold:.3f} "
        f"({predictor.threshold_source})"
    )
    summary = predict_images(
        predictor, paths, root, FLAGS.output, FLAGS.batch_size, FLAGS.max_pixels,
        FLAGS.overlay_max_side, FLAGS.overwrite,
    )
    print(
        f"{summary['num_images']} images predicted, {summary['num_skipped']} skipped"
        + (f" (see {os.path.join(FLAGS.output, 'skipped.jsonl')})"
           if summary["num_skipped"] else "")
        + f"; results in {FLAGS.output}"
    )


def run_main():
    cli.run(main, define_flags, __doc__, "wsol-predict")


if __name__ == "__main__":
    run_main()
