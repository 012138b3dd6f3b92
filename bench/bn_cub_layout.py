r"""Inference- vs training-mode top-1: built-in synthetic benchmark, in memory vs CUB layout.

Issue 9 item 1: a part-domination set in the CUB-200-2011 layout (1,200 training
images, 64x64), trained with configs/synthetic_cam.py and only --config.data.*
overrides, sat at chance in inference mode.  This script renders the synthetic
benchmark, writes the same images to disk in the CUB layout (lossless PNG), trains
CAM on each (in-memory source, then the CUB loader), and reports test top-1 in
inference mode (moving statistics as training left them, then after precise BN)
and in training mode (batch statistics, batches of 32).

    PYTHONPATH=$PWD python bench/bn_cub_layout.py                 # fixed recipe
    PYTHONPATH=$PWD python bench/bn_cub_layout.py --bn_momentum=0.99  # old recipe

The last line is JSON.
"""

import argparse
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from wsol_keras.models import backbones  # noqa: E402
from wsol_keras import data as data_lib  # noqa: E402
from wsol_keras.training import precise_bn  # noqa: E402
from wsol_keras.training import trainer as train  # noqa: E402


def write_cub_layout(root, source):
    """Train split -> is_training 1, test split -> 0; boxes as CUB's x y w h."""
    names = [f"{i + 1:03d}.{n}" for i, n in enumerate(source.class_names)]
    rows = []
    for split, is_train in (("train", 1), ("test", 0)):
        a = source.arrays(split)
        for i in range(len(a["label"])):
            rel = f"{names[a['label'][i]]}/{split}_{i:05d}.png"
            path = os.path.join(root, "images", rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            Image.fromarray(a["image"][i]).save(path)
            x0, y0, x1, y1 = (float(v) for v in a["box"][i])
            rows.append((rel, int(a["label"][i]) + 1, is_train, (x0, y0, x1 - x0, y1 - y0)))
    with open(os.path.join(root, "classes.txt"), "w") as f:
        f.writelines(f"{i + 1} {n}\n" for i, n in enumerate(names))
    with open(os.path.join(root, "images.txt"), "w") as f:
        f.writelines(f"{k + 1} {r[0]}\n" for k, r in enumerate(rows))
    with open(os.path.join(root, "image_class_labels.txt"), "w") as f:
        f.writelines(f"{k + 1} {r[1]}\n" for k, r in enumerate(rows))
    with open(os.path.join(root, "train_test_split.txt"), "w") as f:
        f.writelines(f"{k + 1} {r[2]}\n" for k, r in enumerate(rows))
    with open(os.path.join(root, "bounding_boxes.txt"), "w") as f:
        f.writelines(f"{k + 1} {' '.join(f'{v:.1f}' for v in r[3])}\n" for k, r in enumerate(rows))
    return root


def top1(model, images, labels, training, batch=32):
    bns = precise_bn.batch_norm_layers(model)
    saved = [(b.moving_mean.numpy(), b.moving_variance.numpy()) for b in bns]
    hits = 0
    for i in range(0, len(images), batch):
        logits = model(images[i : i + batch].astype(np.float32), training=training)["logits"]
        hits += int(np.sum(np.argmax(np.asarray(logits), -1) == labels[i : i + batch]))
    for b, (m, v) in zip(bns, saved):  # training-mode calls moved them
        b.moving_mean.assign(m)
        b.moving_variance.assign(v)
    return 100.0 * hits / len(images)


def test_arrays(source):
    els = list(source.dataset("test").batch(256).as_numpy_iterator())
    return (
        np.concatenate([e["image"] for e in els]),
        np.concatenate([e["label"] for e in els]),
    )


def run(name, config, workdir, precise_batches):
    keras.utils.set_random_seed(config.seed)
    t0 = time.time()
    model, source, _ = train.train(config, workdir)
    images, labels = test_arrays(source)
    out = {
        "train_images": source.num_examples("train"),
        "test_images": int(len(labels)),
        "infer_moving": top1(model, images, labels, False),
        "training_mode": top1(model, images, labels, True),
    }
    ds = train.make_train_dataset(source, config, config.train.batch_size).repeat()
    summary = precise_bn.recompute_batch_norm_statistics(model, ds, precise_batches)
    out["infer_precise_bn"] = top1(model, images, labels, False)
    out["precise_bn_max_log_var_ratio"] = round(summary["max_log_var_ratio"], 3)
    out["seconds"] = round(time.time() - t0, 1)
    print(name, json.dumps(out), flush=True)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--num_train", type=int, default=1200)
    p.add_argument("--num_test", type=int, default=400)
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--image_size", type=int, default=64)
    p.add_argument("--bn_momentum", type=float, default=backbones.SMALL_CNN_BN_MOMENTUM)
    p.add_argument("--precise_bn_batches", type=int, default=64)
    p.add_argument("--workdir", default="")
    args = p.parse_args(argv)
    backbones.SMALL_CNN_BN_MOMENTUM = args.bn_momentum
    from wsol_keras.configs import synthetic_cam

    root = args.workdir or tempfile.mkdtemp(prefix="bn_cub_layout_")
    base = synthetic_cam.get_config()
    with base.unlocked():
        base.train.epochs = args.epochs
        base.train.precise_bn_batches = 0  # applied (and measured) here instead
        base.data.synthetic.num_train = args.num_train
        base.data.synthetic.num_test = args.num_test
        base.data.image_size = args.image_size
    memory = run("in_memory", base, os.path.join(root, "memory"), args.precise_bn_batches)

    cub_root = write_cub_layout(os.path.join(root, "CUB"), data_lib.get_source(base.data))
    cub = synthetic_cam.get_config()
    with cub.unlocked():
        cub.train.epochs = args.epochs
        cub.train.precise_bn_batches = 0
        cub.data.name = "cub"
        cub.data.root = cub_root
        cub.data.image_size = args.image_size
    on_disk = run("cub_layout", cub, os.path.join(root, "cub"), args.precise_bn_batches)
    result = {
        "bn_momentum": args.bn_momentum,
        "epochs": args.epochs,
        "image_size": args.image_size,
        "precise_bn_batches": args.precise_bn_batches,
        "in_memory": memory,
        "cub_layout": on_disk,
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    sys.path.insert(0, os.getcwd())
    main()
