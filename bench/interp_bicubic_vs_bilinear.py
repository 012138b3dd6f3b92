"""MaxBoxAccV2 with wsolevaluation's map upsampling (cv2 INTER_CUBIC, then
normalize_scoremap; clovaai/wsolevaluation inference.py) against the package's
(tf bilinear, then normalize), on the ground-truth class maps of a trained run.

    python bench/interp_bicubic_vs_bilinear.py --workdir=runs/cam --split=test

Last line: one JSON object with MaxBoxAccV2 (mean over IoU 30/50/70, in
points) for bilinear, cv2 bicubic and tf bicubic (an in-graph candidate) and
the differences.
"""

import argparse
import json

import numpy as np
import tensorflow as tf

from wsol_keras.localization import primitives as cams_lib
from wsol_keras import data as data_lib
from wsol_keras.evaluation import metrics
from wsol_keras.evaluation import paper_protocols
from wsol_keras.training import workdir as workdir_lib
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
    names = ("bilinear", "bicubic", "tf_bicubic", "cubic_in_graph")
    acc = {k: metrics.BoxAccuracy() for k in names}
    for batch in source.dataset(args.split).take(n).batch(args.batch_size):
        images = tf.cast(batch["image"], tf.float32)
        size = tuple(images.shape[1:3])
        maps = cams_lib.select_class_maps(model(images, training=False)["cams"], batch["label"])
        bilinear = cams_lib.normalize_maps(cams_lib.upsample_maps(maps, size)).numpy()
        bicubic = np.stack([paper_protocols.upsample_like_wsolevaluation(m, *size) for m in maps.numpy()])
        gt = [b[:k] for b, k in zip(batch["boxes"].numpy(), batch["num_boxes"].numpy())]
        acc["bilinear"].update(bilinear, gt)
        acc["bicubic"].update(bicubic.astype(np.float32), gt)
        # In-graph candidate: tf's bicubic (Keys a = -0.5; cv2 uses a = -0.75).
        tf_cubic = tf.image.resize(maps[..., None], size, method="bicubic")[..., 0]
        acc["tf_bicubic"].update(cams_lib.normalize_maps(tf_cubic).numpy(), gt)
        # cv2's cubic as constant matrices (wsol_keras.evaluation.paper_protocols).
        in_graph = paper_protocols.upsample_cubic_in_graph(maps, *size)
        acc["cubic_in_graph"].update(cams_lib.normalize_maps(in_graph).numpy(), gt)
    res = {k: v.result()["max_box_acc"] for k, v in acc.items()}
    out = {
        "workdir": args.workdir,
        "split": args.split,
        "num_images": acc["bilinear"].num_images,
        "maxboxaccv2_bilinear": res["bilinear"],
        "maxboxaccv2_bicubic": res["bicubic"],
        "maxboxaccv2_tf_bicubic": res["tf_bicubic"],
        "maxboxaccv2_cubic_in_graph": res["cubic_in_graph"],
        "difference_points": res["bicubic"] - res["bilinear"],
        "tf_bicubic_minus_cv2_bicubic": res["tf_bicubic"] - res["bicubic"],
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
