"""wsol-predict throughput (images/s) on the synthetic test images.

Trains the seconds-long smoke CAM workdir (weights do not change the cost),
writes the synthetic test split as PNG files, then times
`wsol_keras.predict.main.predict_images` end to end: decode + resize, the model and
its maps, the box step, and writing every .npy map, overlay PNG and the JSONL.
The first pass includes tracing the model function; the later passes
(--overwrite into the same folder) are the steady state.

    python bench/predict_speed.py                        # 500 images, batch 16, 3 passes
    python bench/predict_speed.py --num_images 100 --passes 2
    python bench/predict_speed.py --map_method=dgl       # gradient maps (DGL Eq. 8)
    python bench/predict_speed.py --work=/tmp/ps         # reuse the workdir and images

Last line: one JSON object (images_per_s of each pass; ``steady_images_per_s``
= the best pass after the first).
"""

import argparse
import json
import os
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tools"))

from wsol_keras.predict import image_files  # noqa: E402
from wsol_keras.predict import main as predict  # noqa: E402
from wsol_keras.predict import predictors  # noqa: E402
from wsol_keras.training import trainer as train  # noqa: E402
from wsol_keras.configs import synthetic_cam  # noqa: E402
import write_synthetic_images  # noqa: E402

# The synthetic DGL config's layer (configs/synthetic_dgl.py).
DGL_LAYER = "backbone/small_cnn_features/stage3_relu1"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num_images", type=int, default=500)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--map_method", default="cam", help="cam, topk or a layer map method (dgl, pcs, gradcam, gradcam++, ...)")
    parser.add_argument("--dgl_layer", default=DGL_LAYER)
    parser.add_argument(
        "--work", default="", help="folder kept between runs (workdir and images made once)"
    )
    args = parser.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="predict_speed-")
    config = synthetic_cam.get_config("smoke")
    with config.unlocked():
        config.data.synthetic.num_test = args.num_images
    workdir = os.path.join(work, "run")
    images = os.path.join(work, "images")
    if not os.path.exists(os.path.join(images, "list.txt")):
        train.train(config, workdir)
        write_synthetic_images.write_images(config.data, images, "test", args.num_images)
    gradient = args.map_method not in ("cam", "topk")
    predictor = predictors.from_workdir(
        workdir, map_method=args.map_method, dgl_layer=args.dgl_layer if gradient else None
    )
    paths, root = image_files.list_images(os.path.join(images, "list.txt"))
    out = tempfile.mkdtemp(prefix="out-", dir=work)  # a fresh output folder per run
    rates = []
    for i in range(args.passes):
        start = time.perf_counter()
        summary = predict.predict_images(
            predictor, paths, root, os.path.join(out, "predictions"),
            batch_size=args.batch_size, overwrite=i > 0, verbose=False,
        )
        seconds = time.perf_counter() - start
        assert summary["num_images"] == len(paths), summary
        rates.append(len(paths) / seconds)
        print(f"pass {i + 1}: {len(paths)} images in {seconds:.2f} s = {rates[-1]:.1f} images/s")
    print(json.dumps({
        "bench": "predict_speed",
        "num_images": len(paths),
        "image_size": predictor.image_size,
        "batch_size": args.batch_size,
        "model": "synthetic_cam smoke (small_cnn)",
        "map_method": args.map_method,
        "dgl_layer": args.dgl_layer if gradient else "",
        "images_per_s": [round(r, 1) for r in rates],
        "steady_images_per_s": round(max(rates[1:] or rates), 1),
        "cpu_count": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }))


if __name__ == "__main__":
    main()
