"""The papers' protocol options of wsol-eval (wsol_keras.evaluation.protocol) on tiny
hand-made data; every expected number is worked out by hand in the comments."""

import cv2
import keras
import numpy as np
import pytest
import tensorflow as tf

from wsol_keras.evaluation import protocol as eval_protocol
from wsol_keras.evaluation import evaluator
from wsol_keras.configs import base
from wsol_keras.data import MAX_BOXES
from wsol_keras.data import DataSource
from wsol_keras.data import loaders

S = 8


def _two_blob_map():
    """8x8 map: blob A (rows/cols 1-3, value 1.0, 9 px), blob B (rows/cols 5-6,
    value 0.2, 4 px), zero elsewhere (already min-max normalized)."""
    m = np.zeros((S, S), np.float32)
    m[1:4, 1:4] = 1.0
    m[5:7, 5:7] = 0.2
    return m


class _Source(DataSource):
    """In-memory source: the same two-blob image in val and test, one box each."""

    def __init__(self, gt_boxes, labels, original_size=(S, S)):
        super().__init__(["a", "b"], np.zeros((2, 0), np.int32), ("val", "test"), S)
        n = len(gt_boxes)
        boxes = -np.ones((n, MAX_BOXES, 4), np.float32)
        boxes[:, 0] = gt_boxes
        self.elements = {
            "image": np.zeros((n, S, S, 3), np.uint8),
            "label": np.asarray(labels, np.int32),
            "hierarchy": np.zeros((n, 0), np.int32),
            "boxes": boxes,
            "num_boxes": np.ones((n,), np.int32),
            "mask": np.zeros((n, S, S), np.uint8),
            "has_mask": np.zeros((n,), bool),
            "image_id": np.asarray([f"img{i}" for i in range(n)]),
            "original_size": np.tile(np.asarray(original_size, np.int32), (n, 1)),
        }

    def num_examples(self, split):
        return len(self.elements["label"])

    def dataset(self, split):
        return tf.data.Dataset.from_tensor_slices(self.elements)


def _config(**eval_fields):
    config = base.base_config()
    config.data.image_size = S
    config.eval.cam_threshold_step = 0.01
    config.eval.batch_size = 2
    for k, v in eval_fields.items():
        config.eval[k] = v
    return config


def _maps_only(batch):
    n = int(batch["label"].shape[0])
    return {"maps": np.stack([_two_blob_map()] * n)}


# Images 0, 1: GT [1, 1, 6, 6] covers both blobs; image 2: GT [1, 1, 3, 3] only A.
GT = [[1, 1, 6, 6], [1, 1, 6, 6], [1, 1, 3, 3]]


@pytest.mark.parametrize(
    "box_method, gt_known",
    [
        # Largest contour of A at any threshold: wsolevaluation box (1, 1, 4, 4)
        # (x1 + 1), 16 px: IoU 16/36 with [1,1,6,6] (miss), 9/16 with [1,1,3,3] (hit).
        ("largest_contour", 100 / 3),
        # Mean = (9 + 4 * 0.2) / 64 = 0.153: both blobs are foreground, box
        # (1, 1, 6, 6): IoU 1 for images 0, 1, 9/36 for image 2.
        ("spn", 200 / 3),
        # DANet union at thresholds <= 0.2 covers both blobs (images 0, 1 hit);
        # at 0.25, 0.3 only A, (1, 1, 3, 3) inclusive (image 2 hits): val picks 0.05.
        ("danet_union", 200 / 3),
    ],
)
def test_box_method_sets_the_loc_box_and_leaves_max_box_acc(box_method, gt_known):
    config = _config(box_method=box_method)
    got = evaluator.evaluate_model(None, _Source(GT, [0, 0, 1]), config, results_fn=_maps_only)
    assert got["box_method"] == box_method
    assert got["gt_known_loc"] == pytest.approx(gt_known)
    # CorLoc: class 0 = images 0, 1; class 1 = image 2 -> mean of per-class rates.
    hits = {"largest_contour": (0, 1), "spn": (1, 0), "danet_union": (1, 0)}[box_method]
    assert got["corloc"] == pytest.approx(100 * (hits[0] + hits[1]) / 2)
    assert got["max_box_acc"] == pytest.approx(100 / 3)  # wsolevaluation's box always
    # Object Energy (SPN Sec. 4.1): A holds 9 of 9.8 units; [1,1,6,6] holds all.
    assert got["object_energy"] == pytest.approx(100 * (2 + 9 / 9.8) / 3)
    assert got["object_energy_map"] == "localization map"
    if box_method == "danet_union":
        assert got["box_threshold"] == 0.05
        third = 100 / 3
        assert got["danet_union_sweep"] == pytest.approx(
            {"0.05": 2 * third, "0.1": 2 * third, "0.15": 2 * third, "0.2": 2 * third,
             "0.25": third, "0.3": third}
        )


def test_fixed_mode_truncates_resized_boxes_like_wsolevaluation():
    # wsolevaluation resize_bbox: int(x * S / w) in float64, for integer boxes in
    # the original image (w = 500, h = 375, S = 224).
    orig = np.array([[0, 0, 499, 374], [125, 30, 250, 299], [77, 11, 333, 187]], np.float32)
    padded = -np.ones((MAX_BOXES, 4), np.float32)
    padded[:3] = orig
    scaled = loaders.scale_boxes(tf.constant(padded), 3, 375, 500, 224).numpy()[:3]
    want = [[int(x0 * 224 / 500), int(y0 * 224 / 375), int(x1 * 224 / 500), int(y1 * 224 / 375)]
            for x0, y0, x1, y1 in orig.astype(np.float64)]
    np.testing.assert_array_equal(eval_protocol.truncate_boxes(scaled), want)
    # The float32 scaling of 500 * 224 / 500 must still truncate to 224.
    edge = loaders.scale_boxes(tf.constant([[0, 0, 500, 375]] + [[-1] * 4] * 15, tf.float32),
                               1, 375, 500, 224).numpy()[:1]
    np.testing.assert_array_equal(eval_protocol.truncate_boxes(edge), [[0, 0, 224, 224]])


def test_original_boxes_undo_the_resize_exactly():
    rng = np.random.default_rng(0)
    for h, w in [(375, 500), (333, 500), (500, 281), (1023, 17)]:
        x = rng.integers(0, w, (8, 2))
        y = rng.integers(0, h, (8, 2))
        orig = np.stack([x.min(1), y.min(1), x.max(1), y.max(1)], 1).astype(np.float32)
        padded = -np.ones((MAX_BOXES, 4), np.float32)
        padded[:8] = orig
        scaled = loaders.scale_boxes(tf.constant(padded), 8, h, w, 224).numpy()[:8]
        np.testing.assert_array_equal(eval_protocol.original_boxes(scaled, 224, (h, w)), orig)


def test_original_mode_scores_the_raw_map_resized_to_the_image():
    # Original image 16 x 24 (h x w) delivered at S = 8: boxes x3 in x, x2 in y.
    raw = np.random.default_rng(1).uniform(size=(2, 3)).astype(np.float32)
    batch = {
        "boxes": tf.constant([[[1, 1, 6, 6]] + [[-1] * 4] * (MAX_BOXES - 1)], tf.float32),
        "num_boxes": tf.constant([1]),
        "original_size": tf.constant([[16, 24]]),
    }
    results = {"raw_maps": raw[None], "maps": np.zeros((1, S, S), np.float32)}
    (view,) = eval_protocol.views(batch, results, np.array([True]), _config(image_size_mode="original"))
    want = cv2.resize(raw, (24, 16), interpolation=cv2.INTER_CUBIC).astype(np.float64)
    want = (want - want.min()) / (want.max() - want.min())
    np.testing.assert_allclose(view.scoremap, want, atol=1e-6)
    np.testing.assert_array_equal(view.gt, [[3, 2, 18, 12]])


def test_original_mode_metrics_in_original_pixels():
    # The two-blob map at S = 8 for a 16 x 16 original (x2): the map resized by
    # INTER_CUBIC keeps blob A the largest region and the GT doubles; the SPN box
    # is then the union of both blobs in 16 x 16 pixels and hits [2,2,12,12].
    config = _config(image_size_mode="original", box_method="spn")
    source = _Source([[1, 1, 6, 6]], [0], original_size=(16, 16))
    got = evaluator.evaluate_model(None, source, config, results_fn=_maps_only)
    assert got["image_size_mode"] == "original"
    assert got["gt_known_loc"] == 100.0


def _ten_crop_source():
    """Two 8x8 images of distinct pixel values (channel 0 = a ramp)."""
    source = _Source([[0, 0, 7, 7], [0, 0, 7, 7]], [0, 1])
    img = np.zeros((2, S, S, 3), np.uint8)
    img[0, ..., 0] = np.arange(64).reshape(8, 8) * 4
    img[1, ..., 0] = 255 - np.arange(64).reshape(8, 8) * 4
    source.elements["image"] = img
    return source


def test_ten_crop_scores_are_the_mean_softmax_of_the_ten_crops():
    config = _config(ten_crop=True, ten_crop_resize=12)
    source = _ten_crop_source()
    (batch,) = list(eval_protocol.dataset(source, "test", config).batch(2))
    seen = []

    def fake_map_fn(images, labels):
        x = images.numpy()
        seen.append(x)
        # logits: (mean of channel 0 / 64, 0): depends on where the crop is
        logits = np.stack([x[..., 0].mean((1, 2)) / 64.0, np.zeros(len(x))], 1)
        return {"logits": tf.constant(logits), "maps": tf.zeros((len(x), S, S))}

    single = {"maps": np.zeros((2, S, S), np.float32), "logits": np.zeros((2, 2), np.float32)}
    fn = eval_protocol.ten_crop_results(fake_map_fn, lambda b: dict(single), config)
    got = fn(batch)
    crops = np.concatenate(seen)
    assert crops.shape == (20, S, S, 3)
    # By hand: the resized 12 x 12 image, crops at offsets 0, 4 and center 2,
    # mirrored copies for crops 5-9 (torchvision TenCrop order).
    big = batch["ten_crop_image"].numpy().astype(np.float32)
    for i in range(2):
        flip = big[i, :, ::-1]
        want = [big[i, 0:8, 0:8], big[i, 0:8, 4:12], big[i, 4:12, 0:8], big[i, 4:12, 4:12],
                big[i, 2:10, 2:10], flip[0:8, 0:8], flip[0:8, 4:12], flip[4:12, 0:8],
                flip[4:12, 4:12], flip[2:10, 2:10]]
        np.testing.assert_array_equal(crops[10 * i : 10 * i + 10], np.stack(want))
        z = np.stack([np.asarray(want)[..., 0].mean((1, 2)) / 64.0, np.zeros(10)], 1)
        p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
        np.testing.assert_allclose(np.exp(got["logits"][i]), p.mean(0), rtol=1e-5)
    np.testing.assert_array_equal(got["maps"], single["maps"])  # cam: the single image's


def test_ten_crop_dgl_maps_come_from_the_single_image_by_default():
    # DGL Sec. 4.2: images "reshaped to 224x224 and 10 crops averaged ... to
    # obtain localization maps and classification results respectively": the
    # maps of the single S x S image, the scores of the ten crops.
    config = _config(ten_crop=True, ten_crop_resize=12, map_method="dgl")
    (batch,) = list(eval_protocol.dataset(_ten_crop_source(), "test", config).batch(2))

    def fake_map_fn(images, labels):
        x = images.numpy()
        return {"logits": tf.zeros((len(x), 2)), "maps": tf.constant(x[..., 0] / 255.0)}

    single_maps = np.arange(2 * S * S, dtype=np.float32).reshape(2, S, S) / 128.0
    single = {"maps": single_maps, "raw_maps": single_maps[:, :4, :4], "logits": np.zeros((2, 2))}
    got = eval_protocol.ten_crop_results(fake_map_fn, lambda b: dict(single), config)(batch)
    np.testing.assert_array_equal(got["maps"], single_maps)
    np.testing.assert_array_equal(got["raw_maps"], single_maps[:, :4, :4])
    np.testing.assert_allclose(np.exp(got["logits"]), 0.5, rtol=1e-6)  # crops' mean softmax


def test_ten_crop_dgl_maps_average_back_to_the_resized_image():
    # Each crop's "map" is its own channel 0 / 255, so pasting the ten maps back
    # (mirrored ones mirrored back) must give the 12 x 12 image's channel 0 / 255.
    config = _config(ten_crop=True, ten_crop_resize=12, map_method="dgl", ten_crop_maps="average")
    (batch,) = list(eval_protocol.dataset(_ten_crop_source(), "test", config).batch(2))

    def fake_map_fn(images, labels):
        x = images.numpy()
        return {"logits": tf.zeros((len(x), 2)), "maps": tf.constant(x[..., 0] / 255.0)}

    got = eval_protocol.ten_crop_results(fake_map_fn, None, config)(batch)
    big = batch["ten_crop_image"].numpy()[..., 0] / 255.0
    np.testing.assert_allclose(got["raw_maps"], big, atol=1e-6)
    for m, b in zip(got["maps"], big):  # S x S: the 12 x 12 map shrunk, min-max
        small = cv2.resize(b.astype(np.float32), (S, S), interpolation=cv2.INTER_AREA)
        np.testing.assert_allclose(m, (small - small.min()) / np.ptp(small), atol=1e-6)


def test_ten_crop_evaluation_runs_on_a_model_and_says_so():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((S, S, 3))
    cams = keras.layers.Conv2D(2, 1)(keras.layers.AveragePooling2D(2)(inputs))
    logits = keras.layers.GlobalAveragePooling2D()(cams)
    model = keras.Model(inputs, {"logits": logits, "cams": cams})
    config = _config(ten_crop=True, ten_crop_resize=10)
    got = evaluator.evaluate_model(model, _ten_crop_source(), config)
    assert got["ten_crop"] is True and got["ten_crop_resize"] == 10
    assert 0.0 <= got["top1_cls"] <= 100.0


@pytest.mark.parametrize(
    "field, value",
    [("box_method", "max"), ("image_size_mode", "native"), ("ten_crop_resize", 4)],
)
def test_bad_protocol_fields_name_the_field(field, value):
    config = _config(ten_crop=True, **{field: value})
    with pytest.raises(ValueError, match=f"config.eval.{field}"):
        eval_protocol.check_config(config)


def test_ten_crop_refuses_score_maps_without_a_model():
    with pytest.raises(ValueError, match="ten_crop needs a model"):
        evaluator.evaluate_model(None, _Source(GT, [0, 0, 1]), _config(ten_crop=True),
                                results_fn=_maps_only)


# The papers' test protocols (paper sections / released code cited in each config).
PAPER_PROTOCOLS = {
    # config: (ten_crop, image_size_mode, box_method)
    "cub_vgg16_acol": (True, "original", "largest_contour"),  # ACoL Sec. 3.2, 4.1
    "cub_vgg16_danet": (True, "original", "danet_union"),  # released val_hierarchy.py
    "cub_vgg16_dgl": (True, "original", "largest_contour"),  # DGL Sec. 3.5, 4.2
    "cub_vgg16_slt": (True, "fixed", "largest_contour"),  # SLT-Net Sec. 4.1
    "cub_vgg16_spn": (False, "original", "spn"),  # SPN Sec. 4.3
    "cub_vgg16_cam": (False, "fixed", "largest_contour"),  # wsolevaluation
}


@pytest.mark.parametrize("name", sorted(PAPER_PROTOCOLS))
def test_paper_configs_use_their_papers_test_protocol(name):
    import importlib

    config = importlib.import_module(f"wsol_keras.configs.{name}").get_config()
    e = config.eval
    assert (e.ten_crop, e.image_size_mode, e.box_method) == PAPER_PROTOCOLS[name]
    eval_protocol.check_config(config)
    if e.ten_crop:
        assert eval_protocol.ten_crop_resize(config) == 256  # 224 crops of 256
    # ACoL's release resizes the shorter side to 256 (utils/LoadData.py
    # transforms.Resize(256)) for training and its ten crops; the others
    # (wsolevaluation, DANet utils/loader.py Resize((256, 256))) squash.
    want = "shorter_side" if name == "cub_vgg16_acol" else "square"
    assert config.data.resize_mode == want


@pytest.mark.parametrize(
    "method", ["acol", "adl", "cam", "cutmix", "danet", "dgl", "has", "slt", "spn"]
)
def test_synthetic_configs_keep_wsolevaluations_protocol(method):
    import importlib

    e = importlib.import_module(f"wsol_keras.configs.synthetic_{method}").get_config().eval
    assert (e.ten_crop, e.image_size_mode, e.box_method) == (False, "fixed", "largest_contour")


def test_record_key_and_table_name_the_protocol():
    from wsol_keras.evaluation import records
    from wsol_keras.evaluation import report
    config = _config(box_method="danet_union", image_size_mode="original", ten_crop=True)
    assert records.record_key("test", config) == "test-cam-danet_union-original-tencrop"
    assert records.record_key("test", _config()) == "test-cam"
    table = report.format_table(
        {"gt_known_loc": 50.0, "object_energy": 61.5, "box_threshold": 0.15,
         **eval_protocol.describe(config)}
    )
    assert "object_energy" in table and "61.50" in table
    assert "Loc / CorLoc box: danet_union at 0.15" in table
    assert "original image size" in table and "ten-crop of 9" in table  # 8 * 256 / 224


@pytest.mark.slow
def test_wsol_eval_runs_spns_multilabel_protocol_on_a_voc_workdir(tmp_path):
    # A VOC workdir (random weights) through the wsol-eval CLI: the SPN protocol's
    # record, not the single-label one (which would refuse multi-hot labels).
    import json
    import os
    import subprocess
    import sys

    from file_modules import load_module
    from wsol_keras import data as data_lib
    from wsol_keras.training import trainer
    from wsol_keras.training import workdir as workdir_lib
    from wsol_keras.configs import voc07_vgg16_spn

    # The VOC folder fixture of tests/data (loaded by path: CI runs pytest
    # without the checkout on sys.path).
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    voc = load_module("voc_fixture", os.path.join(here, "data", "test_data_voc.py"))
    root = voc.make_voc(tmp_path / "voc", voc.IMAGES, {
        "trainval": ["000001", "000002", "000003"], "test": ["000001", "000003"]})
    config = voc07_vgg16_spn.get_config("smoke")
    config.data.root = root
    config.data.image_size = 32
    config.model.backbone = "small_cnn"
    config.model.weights = None
    config.method.num_maps = 16
    config.eval.batch_size = 2
    source = data_lib.get_source(config.data)
    info = trainer.data_info_of(source, config)
    keras.utils.set_random_seed(0)
    model = trainer.build_compiled_model(config, info)
    wd = str(tmp_path / "run")
    workdir_lib.write_config(wd, config, info)
    workdir_lib.save_weights_atomic(model, workdir_lib.final_weights_path(wd))
    root_dir = os.path.dirname(here)
    proc = subprocess.run(
        [sys.executable, "-m", "wsol_keras.evaluation.evaluator", f"--workdir={wd}"],
        capture_output=True, text=True, timeout=300,
        env=dict(os.environ, PYTHONPATH=root_dir, TF_CPP_MIN_LOG_LEVEL="2"),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "SPN multi-label protocol" in proc.stdout and "CorLoc" in proc.stdout
    with open(os.path.join(wd, "eval", "test-cam", "spn_protocol.json")) as f:
        record = json.load(f)
    # 000003's tvmonitor box covers the whole image: its point is always a hit.
    tv = record["class_names"].index("tvmonitor")
    assert record["per_class"]["pointing_all"][tv] == 1.0
    assert not os.path.exists(os.path.join(wd, "metrics.json"))


def test_ten_crop_images_are_the_original_file_resized_once(tmp_path):
    # A CUB folder (tests/data fixture, one corrupt test image) whose val image
    # a_1 is a 20 x 30 pattern: its ten-crop copy is the decoded file resized to
    # 12 x 12 (antialiased bilinear, as the evaluation resize), not the 8 x 8
    # element resized up again; the skipped corrupt image keeps both in step.
    import os

    from file_modules import load_module

    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    cub = load_module("cub_fixture", os.path.join(here, "data", "test_data_cub.py"))
    root = cub.make_cub(str(tmp_path / "CUB"))
    pattern = (np.arange(20 * 30 * 3).reshape(20, 30, 3) % 251).astype(np.uint8)
    path = os.path.join(root, "images", "001.Black_footed_Albatross", "a_1.png")
    cv2.imwrite(path, pattern[..., ::-1])  # cv2 writes BGR
    config = _config(ten_crop=True, ten_crop_resize=12)
    config.data.name, config.data.root = "cub", root
    from wsol_keras import data as data_lib
    source = data_lib.get_source(config.data)
    (element,) = list(eval_protocol.dataset(source, "val", config))
    assert element["ten_crop_image_id"].numpy() == element["image_id"].numpy()
    want = tf.image.resize(pattern, (12, 12), method="bilinear", antialias=True)
    want = np.clip(np.round(want.numpy()), 0, 255)
    np.testing.assert_array_equal(element["ten_crop_image"].numpy(), want)
    blurry = tf.image.resize(element["image"], (12, 12), antialias=True).numpy()
    assert np.abs(np.round(blurry) - want).max() > 2
    test = list(eval_protocol.dataset(source, "test", config))  # c_2 is corrupt
    assert [e["image_id"].numpy() for e in test] == [e["ten_crop_image_id"].numpy() for e in test]
    assert len(test) == 1


def test_report_grid_draws_the_loc_box_of_the_box_method():
    from wsol_keras.evaluation import report
    drawn = {}
    for method, want in [("spn", [1, 1, 6, 6]), ("largest_contour", [1, 1, 4, 4])]:
        config = _config(box_method=method)
        grid = report.ExampleCollector(1, ["a", "b"], box_fn=eval_protocol.box_fn(config))

        def maps_and_logits(batch):
            return dict(_maps_only(batch), logits=np.zeros((int(batch["label"].shape[0]), 2)))

        evaluator.evaluate_model(None, _Source(GT, [0, 0, 1]), config,
                                on_batch=grid, results_fn=maps_and_logits)
        drawn[method] = grid.items[0]["pred_box"].tolist()
        assert drawn[method] == want  # two-blob map: SPN's union box / blob A's box


def test_workdirs_written_before_the_protocol_fields_get_the_defaults():
    # A config.json from before these fields: read back as a plain ConfigDict.
    import ml_collections

    old = ml_collections.ConfigDict(_config().to_dict())
    for name in eval_protocol.DEFAULTS:
        del old.eval[name]
    got = evaluator.evaluate_model(None, _Source(GT, [0, 0, 1]), old, results_fn=_maps_only)
    assert got["box_method"] == "largest_contour" and got["image_size_mode"] == "fixed"
    assert got["gt_known_loc"] == pytest.approx(100 / 3)  # as the default case above
    # ... and configs/base.py states the same defaults.
    assert {k: base.base_config().eval[k] for k in eval_protocol.DEFAULTS} == eval_protocol.DEFAULTS


def test_whole_image_regressor_boxes_are_flagged_in_the_metrics():
    """A box regressor that learned whole-image boxes (SLT-Net on flat maps):
    the metrics say so; object-sized boxes are not flagged."""
    small = [[1, 1, 3, 3]] * 3  # 9 of 64 px

    def regressor(box):
        def results(batch):
            n = int(batch["label"].shape[0])
            return {"maps": np.stack([_two_blob_map()] * n),
                    "boxes": np.tile(np.asarray(box, np.float32), (n, 1))}
        return results

    config = _config()
    whole = evaluator.evaluate_model(
        None, _Source(small, [0, 0, 1]), config, results_fn=regressor([0, 0, 1, 1])
    )
    assert whole["localization_collapsed"] is True
    assert whole["loc_box_full_image"] == 100.0  # (0, 0, 7, 7): 64 of 64 px
    assert "whole-image" in whole["localization_warning"]
    tight = evaluator.evaluate_model(
        None, _Source(small, [0, 0, 1]), config, results_fn=regressor([1 / 7, 1 / 7, 3 / 7, 3 / 7])
    )
    assert tight["localization_collapsed"] is False
    assert tight["loc_box_area_mean"] == pytest.approx(100 * 9 / 64)


def test_shorter_side_ten_crops_come_from_the_aspect_kept_resize(tmp_path):
    # ACoL's release (utils/LoadData.py, --tencrop True): Resize(256) (shorter
    # side, aspect kept) then TenCrop(224).  A 24 x 18 (W x H) PNG, resize 12:
    # 16 x 12; crop 8: top-right crop = columns 8..16, center = rows 2..10,
    # columns 4..12 (torchvision TenCrop offsets).
    import os

    from wsol_keras import data as wdata

    rgb = np.random.default_rng(4).integers(0, 256, (18, 24, 3)).astype(np.uint8)
    root, meta = tmp_path / "img", tmp_path / "meta"
    os.makedirs(root / "a")
    assert cv2.imwrite(str(root / "a" / "x.png"), rgb[..., ::-1])
    for split in ("train", "test"):
        os.makedirs(meta / split)
        for name, line in (("image_ids", "a/x.png"), ("class_labels", "a/x.png,0"),
                           ("localization", "a/x.png,4,3,15,11")):
            (meta / split / f"{name}.txt").write_text(line + "\n")
    config = _config(ten_crop=True, ten_crop_resize=12)
    config.data.update(name="wsol_metadata", root=str(root), metadata=str(meta),
                       resize_mode="shorter_side")
    source = wdata.get_source(config.data)
    (batch,) = list(eval_protocol.dataset(source, "test", config).batch(1))
    big = cv2.resize(rgb, (16, 12), interpolation=cv2.INTER_AREA).astype(np.float64)
    crops = batch["ten_crops"].numpy()[0].astype(np.float64)
    assert crops.shape == (10, S, S, 3)
    # INTER_AREA at 1.5x is not PIL's filter: only the geometry is checked here
    # (the filter itself: tests/data/test_train_loader.py).
    assert np.abs(crops[1] - big[0:8, 8:16]).mean() < 12
    assert np.abs(crops[1] - big[0:8, 0:8]).mean() > 30
    assert np.abs(crops[4] - big[2:10, 4:12]).mean() < 12
    np.testing.assert_array_equal(crops[5], crops[1][:, ::-1])  # mirrored top-left

    def fake_map_fn(images, labels):
        return {"logits": tf.zeros((len(images), 2)), "maps": tf.zeros((len(images), S, S))}

    single = {"maps": np.ones((1, S, S), np.float32)}
    got = eval_protocol.ten_crop_results(fake_map_fn, lambda b: dict(single), config)(batch)
    np.testing.assert_allclose(np.exp(got["logits"]), 0.5, rtol=1e-6)
    config.eval.ten_crop_maps = "average"
    with pytest.raises(ValueError, match="resize_mode"):
        eval_protocol.check_config(config)
