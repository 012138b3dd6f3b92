"""wsol-predict end to end, and wsol-score on the maps it writes."""

import json
import os
import struct
import subprocess
import sys
import zlib

import cv2
import keras
import numpy as np
import pytest
import tensorflow as tf

from wsol_keras import data as data_lib
from wsol_keras.evaluation import evaluator
from wsol_keras.predict import image_files
from wsol_keras.predict import main
from wsol_keras.predict import predictors
from wsol_keras.evaluation import score_folder
from wsol_keras.training import workdir as workdir_lib
from wsol_keras.configs import synthetic_cam
from shared_dirs import smoke_cam_workdir

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A smoke-trained CAM workdir with its evaluation (metrics.json): this
    module's copy of the run's shared one (tests/shared_dirs.py)."""
    return smoke_cam_workdir(tmp_path_factory, tmp_path_factory.mktemp("predict") / "run")


def _write_rgb(path, rgb):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    assert cv2.imwrite(path, np.ascontiguousarray(rgb[..., ::-1]))


def _huge_png(path, width, height):
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr)
        f.write(struct.pack(">I", zlib.crc32(b"IHDR" + ihdr) & 0xFFFFFFFF))


def _read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def test_workdir_folder_with_bad_files(workdir, tmp_path):
    root = tmp_path / "imgs"
    rng = np.random.RandomState(0)
    good = {"a.png": (40, 90), "nested/b.jpg": (64, 64), "nested/deeper/c.bmp": (100, 30)}
    for rel, (h, w) in good.items():
        _write_rgb(str(root / rel), rng.randint(0, 255, (h, w, 3)).astype(np.uint8))
    (root / "nested" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF")
    (root / "fake.png").write_text("not an image")
    (root / "readme.txt").write_text("ignored: not an image extension")
    _huge_png(str(root / "nested" / "huge.png"), 20_000, 20_000)
    out = str(tmp_path / "out")
    predictor = predictors.from_workdir(workdir)
    # The evaluation record of the CAM maps on these weights (eval_records).
    assert "eval/test-cam/metrics.json" in predictor.threshold_source
    paths, image_root = image_files.list_images(str(root))
    summary = main.predict_images(predictor, paths, image_root, out, batch_size=2,
                                     verbose=False)
    assert summary["num_images"] == 3 and summary["num_skipped"] == 3
    skipped = {os.path.basename(p): r for p, r in summary["skipped"]}
    assert set(skipped) == {"corrupt.jpg", "fake.png", "huge.png"}
    assert "400.0 Mpixel exceeds --max_pixels" in skipped["huge.png"]
    rows = _read_jsonl(os.path.join(out, "predictions.jsonl"))
    assert sorted(r["image_id"] for r in rows) == sorted(good)
    assert len(_read_jsonl(os.path.join(out, "skipped.jsonl"))) == 3
    for r in rows:
        h, w = good[r["image_id"]]
        assert (r["height"], r["width"]) == (h, w)
        x0, y0, x1, y1 = r["box"]
        assert 0 <= x0 <= x1 <= w and 0 <= y0 <= y1 <= h
        scoremap = np.load(os.path.join(out, "scoremaps", r["image_id"] + ".npy"))
        assert scoremap.shape == (64, 64) and scoremap.dtype == np.float32
        assert os.path.exists(os.path.join(out, "overlays", r["image_id"] + ".png"))
        assert r["top5"][0]["class_id"] == r["class_id"]
    with open(os.path.join(out, "run.json")) as f:
        assert json.load(f)["num_skipped"] == 3


def test_box_in_original_pixels_by_hand(tmp_path):
    """Map block rows 2..5, cols 1..3 of an 8 x 8 frame; image 40 wide, 16 high.

    wsolevaluation's box of the block: x0 = 1, y0 = 2, x1 = x + w = 4,
    y1 = y + h = 6; back to the 40 x 16 image: x * 40/8, y * 16/8.
    """
    block = np.zeros((1, 8, 8), np.float32)
    block[0, 2:6, 1:4] = 1.0

    def fn(images):
        return {
            "class_ids": tf.constant([1]),
            "scores": tf.constant([0.75]),
            "top5_ids": tf.constant([[1, 0]]),
            "top5_scores": tf.constant([[0.75, 0.25]]),
            "maps": tf.constant(block),
        }

    predictor = predictors.Predictor(fn, 8, ["cat", "dog"], "cam", "", 0.5, "test", "fake")
    _write_rgb(str(tmp_path / "im" / "x.png"), np.zeros((16, 40, 3), np.uint8))
    paths, root = image_files.list_images(str(tmp_path / "im"))
    main.predict_images(predictor, paths, root, str(tmp_path / "out"), verbose=False)
    (row,) = _read_jsonl(str(tmp_path / "out" / "predictions.jsonl"))
    assert row["box"] == [5.0, 4.0, 20.0, 12.0]
    assert row["class_name"] == "dog" and row["score"] == 0.75


def test_existing_output_is_refused(workdir, tmp_path):
    _write_rgb(str(tmp_path / "im" / "x.png"), np.zeros((20, 20, 3), np.uint8))
    out = str(tmp_path / "out")
    predictor = predictors.from_workdir(workdir)
    paths, root = image_files.list_images(str(tmp_path / "im"))
    main.predict_images(predictor, paths, root, out, verbose=False)
    before = os.path.getmtime(os.path.join(out, "predictions.jsonl"))
    with pytest.raises(FileExistsError, match="--overwrite"):
        main.predict_images(predictor, paths, root, out, verbose=False)
    assert os.path.getmtime(os.path.join(out, "predictions.jsonl")) == before
    main.predict_images(predictor, paths, root, out, overwrite=True, verbose=False)
    assert not [n for n in os.listdir(out) if n.startswith(".tmp-")]
    # The CLI: one line on stderr, exit status 1 (as every tool), nothing loaded.
    proc = subprocess.run(
        [sys.executable, "-m", "wsol_keras.predict.main", f"--workdir={workdir}",
         f"--images={tmp_path / 'im'}", f"--output={out}"],
        capture_output=True, text=True, cwd=REPO,
        env=dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2"),
    )
    assert proc.returncode == 1
    assert "wsol-predict: error: --output=" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_keras_application_with_weights_none(tmp_path):
    model_fn = keras.applications.MobileNetV2
    predictor = predictors.from_classifier(
        "MobileNetV2", "out_relu", map_method="dgl", weights="None", image_size=64
    )
    assert predictor.image_size == 64
    rng = np.random.RandomState(1)
    for name, (h, w) in {"p.png": (50, 120), "sub/q.jpg": (64, 64)}.items():
        _write_rgb(str(tmp_path / "im" / name), rng.randint(0, 255, (h, w, 3)).astype(np.uint8))
    paths, root = image_files.list_images(str(tmp_path / "im"))
    summary = main.predict_images(predictor, paths, root, str(tmp_path / "out"),
                                     verbose=False)
    assert summary["num_images"] == 2 and model_fn is keras.applications.MobileNetV2
    rows = _read_jsonl(str(tmp_path / "out" / "predictions.jsonl"))
    for row in rows:
        assert row["class_name"] == f"class_{row['class_id']}"  # no cached ImageNet names
        scoremap = np.load(str(tmp_path / "out" / "scoremaps" / (row["image_id"] + ".npy")))
        assert scoremap.shape == (64, 64) and scoremap.max() == 1.0


def test_keras_application_uses_its_own_preprocess_input():
    _, preprocess = predictors.keras_application("MobileNetV2", None, 32)
    assert preprocess is keras.applications.mobilenet_v2.preprocess_input
    with pytest.raises(ValueError, match="not a keras.applications model"):
        predictors.keras_application("VGG17", None)


def test_scored_predict_maps_equal_wsol_eval(workdir, tmp_path):
    """wsol-score on wsol-predict's maps == wsol-eval, both on top-1 maps.

    wsol-predict maps the predicted (top-1) class; wsol-eval maps the ground
    truth class by default, so it runs here with map_method=topk, topk=1 (the
    map of the top-1 class) to compare like for like. The synthetic images are
    written as PNG files named by their image ids (no extension), so the
    score-map names match the data source's ids.
    """
    config = synthetic_cam.get_config("smoke")
    with config.unlocked():
        config.eval.map_method = "topk"
        config.eval.topk = 1
    source = data_lib.get_source(config.data)
    root = tmp_path / "images"
    listing = []
    for split in ("val", "test"):
        arrays = source.arrays(split)
        for image, image_id in zip(arrays["image"], arrays["image_id"]):
            path = root / image_id  # PNG bytes, no extension: named as the id
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(cv2.imencode(".png", image[..., ::-1])[1].tobytes())
            listing.append(image_id)
    (root / "list.txt").write_text("\n".join(listing) + "\n")
    predictor = predictors.from_workdir(workdir)
    paths, image_root = image_files.list_images(str(root / "list.txt"))
    out = str(tmp_path / "out")
    main.predict_images(predictor, paths, image_root, out,
                           batch_size=config.eval.batch_size, verbose=False)
    model, _, _ = workdir_lib.load_model(workdir)
    expected = evaluator.evaluate_model(model, source, config, "test")
    scored = score_folder.score(os.path.join(out, "scoremaps"), source, config, "test")
    keys = ("max_box_acc", "max_box_acc_v2", "max_box_acc_v2_iou30",
            "max_box_acc_v2_iou70", "gt_known_loc", "pxap", "pointing_game",
            "corloc", "cam_threshold", "num_images")
    assert {k: scored[k] for k in keys} == {k: expected[k] for k in keys}
    assert "top1_cls" not in scored and "top1_loc" not in scored


def test_threshold_of_another_map_method_is_not_reused(workdir):
    """The recorded threshold was chosen for CAM maps; DGL maps do not get it."""
    with open(os.path.join(workdir, "metrics.json")) as f:
        assert json.load(f)["map_method"] == "cam"
    cam = predictors.from_workdir(workdir)
    dgl = predictors.from_workdir(
        workdir, map_method="dgl", dgl_layer="backbone/small_cnn_features/stage3_relu1"
    )
    assert "eval/test-cam/metrics.json" in cam.threshold_source
    assert (dgl.threshold_source, dgl.cam_threshold) == ("default", 0.2)
    maps = dgl(np.zeros((2, 64, 64, 3), np.uint8))["maps"]
    assert maps.shape == (2, 64, 64)


def test_keras_file_classifier(tmp_path):
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="predictions")(x)
    path = str(tmp_path / "tiny.keras")
    keras.Model(inputs, outputs).save(path)
    predictor = predictors.from_classifier(
        path, "conv", map_method="gradcam", class_names=["a", "b", "c"]
    )
    assert predictor.image_size == 32
    images = np.random.RandomState(0).randint(0, 255, (2, 32, 32, 3)).astype(np.uint8)
    result = predictor(images)
    assert result["maps"].shape == (2, 32, 32)
    np.testing.assert_allclose(result["top5_scores"].sum(axis=1), 1.0, rtol=1e-5)
    assert predictor.class_name(int(result["class_ids"][0])) in ("a", "b", "c")
