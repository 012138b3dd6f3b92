r"""Export benchmark: latency, sizes, in-graph box cost and agreement, int8 Loc.

    PYTHONPATH=. python bench/export_latency.py                 # trains a CAM model
    PYTHONPATH=. python bench/export_latency.py --workdir=runs/synthetic_cam

Without --workdir it trains configs/synthetic_cam.py for --epochs epochs into a
temporary workdir and evaluates it (for metrics.json's CAM threshold). Then, in
one process:

    * per-image latency at batch 1 (median of --repeats calls after warm-up) of
      the Keras model (eager call and tf.function), the SavedModel's
      image_tensor and image_bytes (JPEG) signatures, and each TFLite variant
      (LiteRT, 1 thread);
    * the in-graph box step (`boxes.tf_largest_component_box`) against the
      forward pass (target < 10%);
    * agreement of the exported graph's boxes with the evaluator's cv2 path
      on the synthetic test set (same maps, identical boxes);
    * GT-known Loc (IoU >= 0.5 with a ground-truth box, map of the true class)
      of every TFLite variant on the synthetic test set (int8 target: within
      2 points of float32), and each variant's size.

The last line printed is one JSON object.
"""

import json
import os
import shutil
import statistics
import tempfile
import time

from absl import app
from absl import flags
import numpy as np
import tensorflow as tf

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Trained workdir (default: train one).")
flags.DEFINE_integer("epochs", 4, "Epochs when training a model here.")
flags.DEFINE_integer("repeats", 50, "Timed calls per latency figure.")
flags.DEFINE_integer("num_test", 300, "Test images for agreement / Loc.")
flags.DEFINE_integer("num_calibration", 100, "Training images for int8.")
flags.DEFINE_bool(
    "keep", False, "Keep the temporary folder (trained workdir, exports)."
)
flags.DEFINE_bool(
    "vgg_reference",
    True,
    "Also time the box step on 224x224 maps against a VGG16 forward at 224 "
    "(the papers' setting; random weights).",
)


def _median_ms(fn, repeats, warmup=5):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def _train(workdir, epochs):
    from wsol_keras.configs import base as config_base  # pylint: disable=g-import-not-at-top
    from wsol_keras.evaluation import evaluator as evaluate  # pylint: disable=g-import-not-at-top
    from wsol_keras.training import trainer as train  # pylint: disable=g-import-not-at-top

    config = config_base.base_config()
    config.train.epochs = epochs
    model, source, _ = train.train(config, workdir)
    metrics = evaluate.evaluate_and_report(model, source, config, workdir)
    return metrics


def _gt_known_loc(boxes_s, gt_boxes, num_boxes):
    from wsol_keras.localization import boxes as boxes_lib  # pylint: disable=g-import-not-at-top

    hits = [
        boxes_lib.iou_xyxy(box[None], gt[:n]).max() >= 0.5
        for box, gt, n in zip(boxes_s, gt_boxes, num_boxes)
    ]
    return 100.0 * float(np.mean(hits))


def main(argv):
    del argv
    import keras  # pylint: disable=g-import-not-at-top

    from wsol_keras.localization import boxes as boxes_lib  # pylint: disable=g-import-not-at-top
    from wsol_keras import data as data_lib  # pylint: disable=g-import-not-at-top
    from wsol_keras.evaluation import records as eval_records  # pylint: disable=g-import-not-at-top
    from wsol_keras.localization import maps as localization  # pylint: disable=g-import-not-at-top
    from wsol_keras.export import inference  # pylint: disable=g-import-not-at-top
    from wsol_keras.export import saved_model_lib  # pylint: disable=g-import-not-at-top
    from wsol_keras.export import tflite_lib as tflite  # pylint: disable=g-import-not-at-top
    from wsol_keras.training import workdir as workdir_lib  # pylint: disable=g-import-not-at-top

    tmp = tempfile.mkdtemp(prefix="wsol-export-bench-")
    workdir = FLAGS.workdir
    train_s = None
    if not workdir:
        workdir = os.path.join(tmp, "workdir")
        t = time.perf_counter()
        _train(workdir, FLAGS.epochs)
        train_s = time.perf_counter() - t
    model, config, data_info = workdir_lib.load_model(workdir)
    threshold, threshold_source = eval_records.resolve_cam_threshold(workdir, config)
    s = int(config.data.image_size)
    source = data_lib.get_source(config.data)
    test = next(iter(source.dataset("test").take(FLAGS.num_test).batch(FLAGS.num_test)))
    test = {k: v.numpy() for k, v in test.items()}
    n = len(test["label"])
    print(
        f"model {config.method.name}/{config.model.backbone} {s}px, "
        f"cam_threshold {threshold:.3f} ({threshold_source}), {n} test images"
    )

    # -- SavedModel -----------------------------------------------------------------
    path = saved_model_lib.export_saved_model(workdir, os.path.join(tmp, "models"), version=1)
    loaded = tf.saved_model.load(path)
    sig_tensor = loaded.signatures["image_tensor"]
    sig_bytes = loaded.signatures["image_bytes"]

    # Box agreement: exported boxes vs the cv2 path on the exported heat maps.
    agree = 0
    for start in range(0, n, 50):
        out = sig_tensor(images=tf.constant(test["image"][start : start + 50]))
        for heat, box in zip(out["heatmaps"].numpy(), out["boxes"].numpy()):
            ref = boxes_lib.boxes_from_scoremap(heat.astype(np.float64), [threshold])
            agree += int(np.array_equal(box, np.asarray(ref[0][0][0], np.float32)))
    agreement = 100.0 * agree / n

    # -- latency at batch 1 -----------------------------------------------------------
    image = test["image"][:1]
    x = image.astype(np.float32)
    jpeg = tf.constant([tf.io.encode_jpeg(image[0], quality=95).numpy()])
    forward = tf.function(lambda v: model(v, training=False))
    heat = sig_tensor(images=tf.constant(image))["heatmaps"]
    box_fn = tf.function(lambda h: boxes_lib.tf_largest_component_box(h, threshold))
    latency = {
        "keras_eager": _median_ms(lambda: model(x, training=False), FLAGS.repeats),
        "keras_tf_function": _median_ms(lambda: forward(x), FLAGS.repeats),
        "savedmodel_image_tensor": _median_ms(
            lambda: sig_tensor(images=tf.constant(image)), FLAGS.repeats
        ),
        "savedmodel_image_bytes_jpeg": _median_ms(
            lambda: sig_bytes(images=jpeg), FLAGS.repeats
        ),
    }
    box_ms = _median_ms(lambda: box_fn(heat), FLAGS.repeats)
    forward_ms = latency["keras_tf_function"]
    # Box cost over the synthetic maps: several maps, median of medians.
    heats = sig_tensor(images=tf.constant(test["image"][:20]))["heatmaps"]
    box_ms_many = statistics.median(
        _median_ms(lambda h=heats[i : i + 1]: box_fn(h), 10, warmup=2)
        for i in range(20)
    )

    reference = None
    if FLAGS.vgg_reference:
        import keras  # pylint: disable=g-import-not-at-top

        big = tf.image.resize(heats[..., None], [224, 224])[..., 0]
        box_224 = statistics.median(
            _median_ms(lambda h=big[i : i + 1]: box_fn(h), 10, warmup=2)
            for i in range(20)
        )
        vgg = keras.applications.VGG16(
            include_top=False, weights=None, input_shape=(224, 224, 3)
        )
        vgg_fn = tf.function(lambda v: vgg(v, training=False))
        z = tf.zeros((1, 224, 224, 3))
        vgg_ms = _median_ms(lambda: vgg_fn(z), 10, warmup=2)
        reference = {
            "box_step_224_ms": round(box_224, 3),
            "vgg16_224_forward_ms": round(vgg_ms, 3),
            "fraction": round(box_224 / vgg_ms, 4),
        }

    # -- TFLite -------------------------------------------------------------------------
    calibration = tflite.representative_images(source, FLAGS.num_calibration)
    sizes, loc, tflite_info = {}, {}, {}
    for variant in tflite.VARIANTS:
        content, info = tflite.convert(
            inference.InferenceModule(model, config, threshold),
            variant,
            calibration,
            postprocess="box" if variant == "float32" else "heatmap",
        )
        tflite_info[variant] = info
        sizes[variant] = len(content)
        lite = tflite.LiteRTModel(content, num_threads=1)
        feed = image if variant == "int8" else x
        latency[f"tflite_{variant}"] = _median_ms(lambda: lite(feed), FLAGS.repeats)
        boxes_s = []
        for img, label in zip(test["image"], test["label"]):
            out = lite(img[None] if variant == "int8" else img[None].astype(np.float32))
            _, box = tflite.postprocess(out, s, threshold, class_ids=[label])
            boxes_s.append(box)
        loc[variant] = _gt_known_loc(
            np.stack(boxes_s), test["boxes"], test["num_boxes"]
        )
    # The Keras model through the same host path, as a cross-check of float32.
    boxes_s = []
    for start in range(0, n, 50):
        out = model(
            test["image"][start : start + 50].astype(np.float32), training=False
        )
        for cams, logits, label in zip(
            out["cams"].numpy(),
            out["logits"].numpy(),
            test["label"][start : start + 50],
        ):
            boxes_s.append(
                tflite.postprocess(
                    {"cams": cams[None], "logits": logits[None]},
                    s,
                    threshold,
                    class_ids=[label],
                )[1]
            )
    loc["keras"] = _gt_known_loc(np.stack(boxes_s), test["boxes"], test["num_boxes"])

    print()
    print(f"{'path (batch 1)':32s} {'ms/image':>9s}")
    for k, v in latency.items():
        print(f"{k:32s} {v:9.2f}")
    print()
    print(
        f"in-graph box step: {box_ms:.3f} ms (median over 20 test maps "
        f"{box_ms_many:.3f} ms) vs forward {forward_ms:.2f} ms = "
        f"{100 * box_ms_many / forward_ms:.1f}% (target < 10%)"
    )
    if reference:
        print(
            f"at 224 px: box step {reference['box_step_224_ms']:.2f} ms vs VGG16 "
            f"forward {reference['vgg16_224_forward_ms']:.1f} ms = "
            f"{100 * reference['fraction']:.1f}%"
        )
    print(f"box agreement, exported graph vs cv2 path: {agreement:.2f}% of {n} maps")
    print()
    print(f"{'TFLite variant':14s} {'KiB':>8s} {'GT-known Loc':>13s} {'in graph':>9s}")
    for variant in tflite.VARIANTS:
        print(
            f"{variant:14s} {sizes[variant] / 1024:8.1f} {loc[variant]:13.2f} "
            f"{tflite_info[variant]['postprocess_in_graph']:>9s}"
        )
    print(f"{'keras':14s} {'':8s} {loc['keras']:13.2f}")
    print(
        f"float32 box level fallback: {tflite_info['float32']['conversion_fallback']}"
    )
    result = {
        "model": f"{config.method.name}/{config.model.backbone}",
        "image_size": s,
        "train_seconds": train_s,
        "cam_threshold": threshold,
        "num_test": n,
        "latency_ms": {k: round(v, 3) for k, v in latency.items()},
        "box_step_ms": round(box_ms_many, 3),
        "forward_ms": round(forward_ms, 3),
        "box_step_fraction": round(box_ms_many / forward_ms, 4),
        "box_step_vs_vgg16_224": reference,
        "box_agreement_percent": agreement,
        "tflite_bytes": sizes,
        "gt_known_loc": {k: round(v, 2) for k, v in loc.items()},
        "int8_minus_float32_loc": round(loc["int8"] - loc["float32"], 2),
        "tflite_postprocess_in_graph": {
            k: v["postprocess_in_graph"] for k, v in tflite_info.items()
        },
        "keras_version": keras.__version__,
        "tensorflow_version": tf.__version__,
    }
    if FLAGS.keep:
        print(f"kept {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(result))


if __name__ == "__main__":
    app.run(main)
