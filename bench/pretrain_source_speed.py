"""Images per second of the procedural pretraining set (data.pretrain_source).

Renders training elements through the tf.data pipeline wsol-train uses
(`PretrainSource.train_dataset`, batched) and reports the rate after a warm-up
batch, with the rate of the bare numpy renderer for comparison.

    PYTHONPATH=. python bench/pretrain_source_speed.py --image_size=40 --batches=20

Last line: JSON {"image_size", "batch", "tf_data_images_per_s",
"numpy_images_per_s", "numpy_images_per_cpu_s" (renderer alone, per CPU
second of one core: independent of other jobs), "cpu_count", "load_average"}.
"""

import argparse
import json
import os
import time

from wsol_keras import data as data_lib
from wsol_keras.data import pretrain_source


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image_size", type=int, default=40)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--batches", type=int, default=20)
    args = parser.parse_args()
    cfg = data_lib.default_data_config()
    cfg.name = "pretrain"
    cfg.image_size = args.image_size
    source = data_lib.get_source(cfg)
    it = iter(source.train_dataset("train", 0, 1.0, False).batch(args.batch))
    next(it)
    start = time.perf_counter()
    for _ in range(args.batches):
        next(it)
    tf_rate = args.batches * args.batch / (time.perf_counter() - start)
    n = args.batches * args.batch // 2
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(n):
        pretrain_source.render(0, [9], i, args.image_size, dict(cfg.pretrain))
    np_rate = n / (time.perf_counter() - start)
    # CPU seconds per image of the renderer alone (one core; load-independent)
    np_cpu_rate = n / max(time.process_time() - cpu, 1e-9)
    result = {
        "image_size": args.image_size,
        "batch": args.batch,
        "tf_data_images_per_s": round(tf_rate, 1),
        "numpy_images_per_s": round(np_rate, 1),
        "numpy_images_per_cpu_s": round(np_cpu_rate, 1),
        "cpu_count": os.cpu_count(),
        "load_average": round(os.getloadavg()[0], 1),
    }
    print(json.dumps(result))
    os._exit(0)  # the endless stream's pending element does not block exit


if __name__ == "__main__":
    main()
