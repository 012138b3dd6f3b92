"""Images/s of the training input pipeline vs raw JPEG decoding, same files and cores.

Generates CUB-like JPEGs (default 256 files of 500x375, smooth random colour
fields plus noise, quality 90) in a temporary folder with CUB-200-2011's text
files, builds the training dataset exactly as `wsol-train` does
(`train.make_train_dataset`: the S x S crop of the original resized to
S' = S * crop_scale, flip, batch, float cast), and times it against a tf.data
pipeline that only reads and `tf.io.decode_jpeg`s the same files with the same
parallelism. Both are run `--repeats` times, alternating; the best rate of each
is reported (background load on a shared machine only slows).

The training dataset is endless: one iterator per repeat, its first batch
(and, with --cache, the one-off decode-and-resize pass) is not timed, then
`epochs * num_images // batch_size` batches are. Besides wall-clock rates it
reports process CPU seconds per image (all of tf.data's threads): on a shared
machine the CPU cost is steadier than the wall time, and images/s per core =
1 / CPU seconds per image.

Usage:
  python bench/input_pipeline.py --num_images=256 --epochs=2 --repeats=2
  python bench/input_pipeline.py --no_antialias   # plain bilinear training resize
  python bench/input_pipeline.py --cache          # data.train_cache=True
  python bench/input_pipeline.py --nondeterministic  # data.train_deterministic=False

The last printed line is one JSON object: `ratio` = pipeline / raw decode
(wall-clock images/s), `cpu_ratio` = the same from CPU seconds per image.
"""

import argparse
import json
import os
import tempfile
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import tensorflow as tf  # noqa: E402

from wsol_keras.configs import base as config_base  # noqa: E402
from wsol_keras import data as data_lib  # noqa: E402
from wsol_keras.training import trainer as train  # noqa: E402

NUM_CLASSES = 8


def write_cub_like(root, num_images, width, height, seed=0):
    """CUB-200-2011's layout with `num_images` training JPEGs + 8 test ones."""
    rng = np.random.default_rng(seed)
    lines = {k: [] for k in ("images", "labels", "split", "boxes")}
    total = num_images + NUM_CLASSES
    for i in range(1, total + 1):
        label = (i - 1) % NUM_CLASSES + 1
        rel = f"{label:03d}.class{label}/img_{i:05d}.jpg"
        path = os.path.join(root, "images", rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        low = rng.uniform(0, 255, (6, 8, 3)).astype(np.float32)
        img = cv2.resize(low, (width, height), interpolation=cv2.INTER_CUBIC)
        img = np.clip(img + rng.normal(0, 12, img.shape), 0, 255).astype(np.uint8)
        cv2.imwrite(path, img, [cv2.IMWRITE_JPEG_QUALITY, 90])
        lines["images"].append(f"{i} {rel}")
        lines["labels"].append(f"{i} {label}")
        lines["split"].append(f"{i} {int(i <= num_images)}")
        lines["boxes"].append(f"{i} 50.0 40.0 {width / 2:.1f} {height / 2:.1f}")
    files = {
        "images.txt": lines["images"],
        "image_class_labels.txt": lines["labels"],
        "train_test_split.txt": lines["split"],
        "bounding_boxes.txt": lines["boxes"],
        "classes.txt": [f"{c} {c:03d}.class{c}" for c in range(1, NUM_CLASSES + 1)],
    }
    for name, rows in files.items():
        with open(os.path.join(root, name), "w") as f:
            f.write("\n".join(rows) + "\n")


def rate(ds, images_per_element, epochs):
    """(images/s, CPU s/image) over `epochs` passes of a finite ds, after one warm-up element."""
    next(iter(ds))
    count, start, cpu = 0, time.perf_counter(), time.process_time()
    for _ in range(epochs):
        for _ in ds:
            count += images_per_element
    return count / (time.perf_counter() - start), (time.process_time() - cpu) / count


def stream_rate(ds, batch_size, num_batches):
    """(images/s, CPU s/image, first-batch s) of `num_batches` batches of an
    endless ds, one iterator, the first batch (start-up, cache fill) untimed."""
    start = time.perf_counter()
    it = iter(ds)
    next(it)
    first = time.perf_counter() - start
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(num_batches):
        next(it)
    count = num_batches * batch_size
    return count / (time.perf_counter() - start), (time.process_time() - cpu) / count, first


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--num_images", type=int, default=256)
    parser.add_argument("--width", type=int, default=500)
    parser.add_argument("--height", type=int, default=375)
    parser.add_argument("--image_size", type=int, default=224)
    parser.add_argument("--crop_scale", type=float, default=256 / 224)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--no_antialias", action="store_true",
        help="data.train_resize_antialias=False (plain bilinear training resize)",
    )
    parser.add_argument("--cache", action="store_true", help="data.train_cache=True")
    parser.add_argument(
        "--nondeterministic", action="store_true",
        help="data.train_deterministic=False (elements leave as they finish)",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as root:
        write_cub_like(root, args.num_images, args.width, args.height)
        config = config_base.base_config()
        config.data.name = "cub"
        config.data.root = root
        config.data.image_size = args.image_size
        config.data.validate_images = False  # a one-off pass, not per epoch
        config.data.train_resize_antialias = not args.no_antialias
        config.data.train_cache = args.cache
        config.data.train_deterministic = not args.nondeterministic
        config.train.crop_scale = args.crop_scale
        config.train.flip = True
        source = data_lib.get_source(config.data)
        pipeline = train.make_train_dataset(source, config, args.batch_size)

        paths = tf.io.gfile.glob(os.path.join(root, "images", "*", "*.jpg"))
        paths = sorted(paths)[: args.num_images]
        raw_ds = (
            tf.data.Dataset.from_tensor_slices(paths)
            .map(
                lambda p: tf.shape(tf.io.decode_jpeg(tf.io.read_file(p), channels=3)),
                num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=False,
            )
            .prefetch(tf.data.AUTOTUNE)
        )
        raw, pipe, firsts = [], [], []
        num_batches = max(1, args.epochs * args.num_images // args.batch_size)
        for _ in range(args.repeats):
            raw.append(rate(raw_ds, 1, args.epochs))
            *p, first = stream_rate(pipeline, args.batch_size, num_batches)
            pipe.append(p)
            firsts.append(first)
            print(
                f"raw decode {raw[-1][0]:.0f} images/s ({raw[-1][1] * 1e3:.2f} ms CPU "
                f"per image), training pipeline {pipe[-1][0]:.0f} images/s "
                f"({pipe[-1][1] * 1e3:.2f} ms CPU per image; first batch {first:.1f} s)",
                flush=True,
            )
    cores = os.cpu_count()
    best_raw, best_pipe = max(r[0] for r in raw), max(p[0] for p in pipe)
    cpu_raw, cpu_pipe = min(r[1] for r in raw), min(p[1] for p in pipe)
    result = {
        "bench": "input_pipeline",
        "num_images": args.num_images,
        "source_size": [args.width, args.height],
        "image_size": args.image_size,
        "batch_size": args.batch_size,
        "train_resize_antialias": not args.no_antialias,
        "train_cache": args.cache,
        "train_deterministic": not args.nondeterministic,
        "cores": cores,
        "raw_decode_images_per_s": best_raw,
        "pipeline_images_per_s": best_pipe,
        "raw_all": [round(r[0], 1) for r in raw],
        "pipeline_all": [round(p[0], 1) for p in pipe],
        "raw_cpu_ms_per_image": cpu_raw * 1e3,
        "pipeline_cpu_ms_per_image": cpu_pipe * 1e3,
        "pipeline_first_batch_s": min(firsts),
        "raw_images_per_s_per_core": 1 / cpu_raw,
        "pipeline_images_per_s_per_core": 1 / cpu_pipe,
        "cpu_ratio": cpu_raw / cpu_pipe,
        "ratio": best_pipe / best_raw,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
