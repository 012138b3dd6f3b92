"""Start-up time of a large wsolevaluation-layout data set: get_source -> first batch.

Writes a folder in wsolevaluation's metadata layout (ILSVRC-like:
``train/<class>/<n>.jpg`` under the image root, ``metadata/<DATASET>/{trainer,
val,test}/image_ids.txt, class_labels.txt, image_sizes.txt`` and box
``localization.txt`` for val / test) with ``--num_images`` tiny real JPEGs
(default 100,000 in 100 class folders; every file exists, so the existence check
does real work), then times what a user waits for with the ILSVRC config
(``configs/ilsvrc_vgg16_cam.py``, ``data.validate_images=False``):

* ``source_s``: ``data.get_source(config.data)`` (parse and check metadata,
  check that every listed file exists);
* ``first_batch_s``: ``trainer.make_train_dataset(...)`` and its first batch.

``--validate_images`` times the same with the decode-everything-up-front check on.
Folder generation is not timed.

Usage:
  python bench/metadata_startup.py --num_images=100000

The last printed line is one JSON object.
"""

import argparse
import json
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

NUM_CLASSES = 100


def write_layout(root, num_images, num_eval):
    """Image root and metadata/<DATASET>; returns (image_root, metadata_dir)."""
    images = os.path.join(root, "dataset")
    meta = os.path.join(root, "metadata", "TOY")
    ok, jpg = cv2.imencode(".jpg", np.full((12, 16, 3), 128, np.uint8))
    assert ok
    jpg = jpg.tobytes()
    for split, n in (("train", num_images), ("val", num_eval), ("test", num_eval)):
        ids, labels, sizes, loc = [], [], [], []
        for i in range(n):
            c = i % NUM_CLASSES
            rel = f"{split}/n{c:08d}/{split}_{i:07d}.jpg"
            path = os.path.join(images, rel)
            if i < NUM_CLASSES:
                os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(jpg)
            ids.append(rel)
            labels.append(f"{rel},{c}")
            sizes.append(f"{rel},16,12")
            loc.append(f"{rel},2,2,10,9")
        d = os.path.join(meta, split)
        os.makedirs(d, exist_ok=True)
        files = {"image_ids.txt": ids, "class_labels.txt": labels,
                 "image_sizes.txt": sizes}
        if split != "train":
            files["localization.txt"] = loc
        for name, rows in files.items():
            with open(os.path.join(d, name), "w") as f:
                f.write("\n".join(rows) + "\n")
    return images, meta


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--num_images", type=int, default=100_000)
    parser.add_argument("--num_eval", type=int, default=1_000)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--image_size", type=int, default=224)
    parser.add_argument("--validate_images", action="store_true")
    parser.add_argument(
        "--config", default="ilsvrc_vgg16_cam",
        help='a module in wsol_keras/configs, or "base" (base config + '
        "wsol_metadata + crop 256/224: runs on code without the ILSVRC config)",
    )
    args = parser.parse_args()

    import importlib

    from wsol_keras import data as data_lib
    from wsol_keras.training import trainer
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        images, meta = write_layout(tmp, args.num_images, args.num_eval)
        gen_s = time.perf_counter() - t0
        print(f"wrote {args.num_images} images in {gen_s:.1f}s", flush=True)

        if args.config == "base":  # for timing older code without the config
            from wsol_keras.configs import base

            config = base.base_config()
            config.data.name = "wsol_metadata"
            config.train.crop_scale = 256 / 224
        else:
            module = importlib.import_module(f"wsol_keras.configs.{args.config}")
            config = module.get_config()
        config.data.root, config.data.metadata = images, meta
        config.data.image_size = args.image_size
        config.data.validate_images = bool(args.validate_images)

        t0 = time.perf_counter()
        source = data_lib.get_source(config.data)
        source_s = time.perf_counter() - t0
        print(f"get_source {source_s:.2f}s", flush=True)
        t1 = time.perf_counter()
        ds = trainer.make_train_dataset(source, config, args.batch_size)
        x, _ = next(iter(ds))
        first_batch_s = time.perf_counter() - t1
        assert x["image"].shape[0] == args.batch_size
        print(f"first batch {first_batch_s:.2f}s", flush=True)

    print(json.dumps({
        "bench": "metadata_startup",
        "num_images": args.num_images,
        "config": args.config,
        "validate_images": bool(args.validate_images),
        "batch_size": args.batch_size,
        "cores": os.cpu_count(),
        "generate_s": round(gen_s, 2),
        "source_s": round(source_s, 3),
        "first_batch_s": round(first_batch_s, 3),
        "total_s": round(source_s + first_batch_s, 3),
    }))


if __name__ == "__main__":
    main()
