"""MaxBoxAccV2 with wsolevaluation's map upsampling (cv2 INTER_CUBIC, then
normalize_scoremap; clovaai/wsolevaluation inference.py) against the package's
(tf bilinear, then normalize), on the ground-truth class maps of a trained run.

    python bench/interp_bicubic_vs_bilinear.py --workdir=runs/cam --split=test

Last line: one JSON object with both MaxBoxAccV2 (mean over IoU 30/50/70, in
points) and their difference.
"""

import argparse
import json

import numpy as np
import tensorflow as tf

from wsol_keras import cams as cams_lib
from wsol_keras import data as data_lib
from wsol_keras import metrics
from wsol_keras import protocol
from wsol_keras import workdir as workdir_lib


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--max_images", type=int, default=None)
    parser.add_argument("--batch_size", type=int, default=32)
    args = parser.parse_args()

    model, config, _ = workdir_lib.load_model(args.workdir)
    source = data_lib.get_source(config.data)
    n = source.num_examples(args.split)
    if args.max_images:
        n = min(n, args.max_images)
    acc = {"bilinear": metrics.BoxAccuracy(), "bicubic": metrics.BoxAccuracy()}
    for batch in source.dataset(args.split).take(n).batch(args.batch_size):
        images = tf.cast(batch["image"], tf.float32)
        size = tuple(images.shape[1:3])
        maps = cams_lib.select_class_maps(model(images, training=False)["cams"], batch["label"])
        bilinear = cams_lib.normalize_maps(cams_lib.upsample_maps(maps, size)).numpy()
        bicubic = np.stack([protocol.upsample_like_wsolevaluation(m, *size) for m in maps.numpy()])
        gt = [b[:k] for b, k in zip(batch["boxes"].numpy(), batch["num_boxes"].numpy())]
        acc["bilinear"].update(bilinear, gt)
        acc["bicubic"].update(bicubic.astype(np.float32), gt)
    res = {k: v.result()["max_box_acc"] for k, v in acc.items()}
    out = {
        "workdir": args.workdir,
        "split": args.split,
        "num_images": acc["bilinear"].num_images,
        "maxboxaccv2_bilinear": res["bilinear"],
        "maxboxaccv2_bicubic": res["bicubic"],
        "difference_points": res["bicubic"] - res["bilinear"],
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
