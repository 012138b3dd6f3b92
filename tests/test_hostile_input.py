"""Hostile-but-realistic input (issue 11): every case ends in a clear error that
names what is wrong (file, line, field, batch position, value) or in documented,
counted behaviour. Cases that were already fine are kept here so they stay fine.

Each test builds a tiny data set (a few 20 x 30 images) in a temp folder, so the
whole module runs in seconds.
"""

import logging
import math
import os
import re

import cv2
import numpy as np
import pytest

from wsol_keras.configs import base as config_base
from wsol_keras.training import config_checks
from wsol_keras import data as wdata
from wsol_keras.evaluation import metrics
S = 16
H, W = 20, 30  # every fixture image is 30 wide, 20 high


# ------------------------------------------------------------------ fixtures
def _img(path, value=120):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    assert cv2.imwrite(str(path), np.full((H, W, 3), value, np.uint8))


def _write(path, text, encoding="utf-8"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    data = text if isinstance(text, bytes) else text.encode(encoding)
    with open(path, "wb") as f:
        f.write(data)


_META = {
    "train/image_ids.txt": "i0.png\ni1.png\ni2.png\ni3.png\n",
    "train/class_labels.txt": "i0.png,0\ni1.png,1\ni2.png,0\ni3.png,1\n",
    "train/localization.txt": "i0.png,2,3,10,12\ni1.png,2,3,10,12\n"
    "i2.png,2,3,10,12\ni3.png,2,3,10,12\n",
    "test/image_ids.txt": "i4.png\ni5.png\n",
    "test/class_labels.txt": "i4.png,0\ni5.png,1\n",
    "test/localization.txt": "i4.png,1,1,29,19\ni5.png,5,5,20,15\n",
}


def make_meta(tmp_path, **override):
    """wsolevaluation layout; ``override`` maps 'split__file' -> text or bytes."""
    root, meta = tmp_path / "images", tmp_path / "metadata" / "TOY"
    for i in range(6):
        _img(root / f"i{i}.png", 40 * i)
    files = dict(_META)
    for k, v in override.items():
        files[k.replace("__", "/").replace("_txt", ".txt")] = v
    for rel, text in files.items():
        if text is not None:
            _write(meta / rel, text)
    return root, meta


def meta_config(root, meta, **kw):
    c = wdata.default_data_config()
    c.name, c.root, c.metadata, c.image_size = "wsol_metadata", str(root), str(meta), S
    for k, v in kw.items():
        setattr(c, k, v)
    return c


def meta_source(tmp_path, data_kw=None, **override):
    return wdata.get_source(meta_config(*make_meta(tmp_path, **override), **(data_kw or {})))


_CUB = {
    "classes.txt": "1 001.A\n2 002.B\n",
    # 4 training images per class, 1 test image per class
    "images.txt": "".join(f"{i + 1} c{i % 2}/im{i}.png\n" for i in range(10)),
    "image_class_labels.txt": "".join(f"{i + 1} {i % 2 + 1}\n" for i in range(10)),
    "train_test_split.txt": "".join(f"{i + 1} {int(i < 8)}\n" for i in range(10)),
    "bounding_boxes.txt": "".join(f"{i + 1} 2 3 8 9\n" for i in range(10)),
}


def make_cub(tmp_path, **override):
    root = tmp_path / "CUB"
    for i in range(10):
        _img(root / "images" / f"c{i % 2}" / f"im{i}.png", 20 * i)
    files = dict(_CUB)
    files.update({k.replace("_txt", ".txt"): v for k, v in override.items()})
    for rel, text in files.items():
        _write(root / rel, text)
    return root


def cub_config(root, **kw):
    c = wdata.default_data_config()
    c.name, c.root, c.image_size = "cub", str(root), S
    for k, v in kw.items():
        setattr(c, k, v)
    return c


def _elements(source, split):
    return {e["image_id"].decode(): e for e in source.dataset(split).as_numpy_iterator()}


@pytest.fixture
def warnings_log(caplog):
    caplog.set_level(logging.WARNING)
    return caplog


# ------------------------------------------------- data: clear errors (were crashes / silent)
def test_latin1_byte_names_file_and_line(tmp_path):
    bad = "i0.png,0\ni1.png,1\ni2.png,0\n".encode() + "i3.png,1 caf\xe9\n".encode("latin-1")
    with pytest.raises(ValueError, match=r"train[/\\]class_labels\.txt:4: .*UTF-8"):
        meta_source(tmp_path, train__class_labels_txt=bad)


def test_utf8_bom_metadata_path_is_not_part_of_the_name(tmp_path):
    src = meta_source(
        tmp_path, train__image_ids_txt="\ufeffi0.png\ni1.png\ni2.png\ni3.png\n"
    )
    assert sorted(_elements(src, "train")) == ["i0.png", "i1.png", "i2.png", "i3.png"]


def test_utf8_bom_cub_first_line(tmp_path):
    src = wdata.get_source(cub_config(make_cub(tmp_path, classes_txt="\ufeff1 001.A\n2 002.B\n")))
    assert src.class_names == ["001.A", "002.B"]


def test_conflicting_duplicate_label_raises_with_both_values(tmp_path):
    labels = "i0.png,0\ni1.png,1\ni2.png,0\ni3.png,1\ni0.png,1\n"
    with pytest.raises(ValueError, match=r"class_labels\.txt:5: image i0\.png .*label 1 here, label 0 at line 1"):
        meta_source(tmp_path, train__class_labels_txt=labels)


def test_label_typo_creating_empty_classes_raises(tmp_path):
    labels = "i0.png,0\ni1.png,1\ni2.png,0\ni3.png,17\n"
    with pytest.raises(
        ValueError, match=r"15 class\(es\) have no image.*17, is at .*class_labels\.txt:4"
    ):
        meta_source(tmp_path, train__class_labels_txt=labels)


def test_two_ids_one_file_warns_with_count(tmp_path, warnings_log):
    src = meta_source(
        tmp_path,
        train__image_ids_txt="i0.png\ni1.png\ni2.png\n./i0.png\n",
        train__class_labels_txt="i0.png,0\ni1.png,1\ni2.png,0\n./i0.png,0\n",
        train__localization_txt=None,
    )
    assert src.num_examples("train") == 4  # counted, not dropped
    assert re.search(r"split train: 1 file\(s\) listed under 2 ids", warnings_log.text)
    assert "i0.png" in warnings_log.text


def test_cub_two_ids_one_file_warns_with_count(tmp_path, warnings_log):
    images = _CUB["images.txt"].replace("10 c1/im9.png", "10 c1/im7.png")
    wdata.get_source(cub_config(make_cub(tmp_path, images_txt=images)))
    assert re.search(r"1 file\(s\) listed under 2 ids", warnings_log.text)
    assert "im7.png" in warnings_log.text


def test_test_split_equal_to_train_warns_with_count(tmp_path, warnings_log):
    meta_source(
        tmp_path,
        test__image_ids_txt=_META["train/image_ids.txt"],
        test__class_labels_txt=_META["train/class_labels.txt"],
        test__localization_txt=_META["train/localization.txt"],
    )
    assert re.search(r"splits train and test share 4 image\(s\)", warnings_log.text)


@pytest.mark.parametrize("path", ["../outside.png", "sub/../../outside.png", "ABS"])
def test_path_outside_root_refused_by_default(tmp_path, path):
    for d in ("", "a", "b"):  # next to each data root, and one absolute
        _img(tmp_path / d / "outside.png")
        os.makedirs(tmp_path / d / "images" / "sub", exist_ok=True)
    if path == "ABS":
        path = str(tmp_path / "outside.png")
    ids = f"i0.png\ni1.png\ni2.png\n{path}\n"
    labels = f"i0.png,0\ni1.png,1\ni2.png,0\n{path},1\n"
    kw = dict(train__image_ids_txt=ids, train__class_labels_txt=labels,
              train__localization_txt=None)
    with pytest.raises(ValueError, match=r"image_ids\.txt:4: .*outside data\.root.*allow_outside_root"):
        meta_source(tmp_path / "a", **kw)
    src = meta_source(tmp_path / "b", data_kw={"allow_outside_root": True}, **kw)
    assert src.num_examples("train") == 4


def test_cub_path_outside_root_refused(tmp_path):
    images = _CUB["images.txt"].replace("10 c1/im9.png", "10 ../../im9.png")
    with pytest.raises(ValueError, match=r"images\.txt:10: .*outside data\.root"):
        wdata.get_source(cub_config(make_cub(tmp_path, images_txt=images)))


_OUTSIDE = "i0.png,2,3,10,12\ni1.png,5,5,50,50\ni2.png,100,100,600,600\ni3.png,2,3,10,12\n"
_ZERO = "i0.png,2,3,10,12\ni1.png,2,3,10,12\ni2.png,5,5,5,9\ni3.png,2,3,10,12\n"


@pytest.mark.parametrize(
    "loc, counted",
    [(_OUTSIDE, r"clipped 1 box\(es\).*dropped 1 box\(es\)"), (_ZERO, r"clipped 0 box\(es\).*dropped 1 box\(es\)")],
    ids=["outside_image", "zero_area"],
)
def test_bad_boxes_clipped_or_dropped_with_count(tmp_path, warnings_log, loc, counted):
    src = meta_source(tmp_path, train__localization_txt=loc)
    el = _elements(src, "train")
    assert re.search(r"split train: " + counted, warnings_log.text)
    assert el["i2.png"]["num_boxes"] == 0  # no usable box left
    if loc is _OUTSIDE:
        # 5,5,50,50 clipped to the 30 x 20 image, then scaled to 16 x 16
        np.testing.assert_allclose(
            el["i1.png"]["boxes"][0], [5 * S / W, 5 * S / H, S, S], rtol=1e-6
        )


@pytest.mark.parametrize(
    "loc, what", [(_OUTSIDE, r"5\.0, 5\.0, 50\.0, 50\.0.*30 x 20"), (_ZERO, "zero area")]
)
def test_bad_boxes_raise_in_strict_mode(tmp_path, loc, what):
    src = meta_source(tmp_path, data_kw={"strict_boxes": True}, train__localization_txt=loc)
    with pytest.raises(ValueError, match=r"localization\.txt:\d: .*" + what + ".*strict_boxes"):
        src.num_examples("train")


# ------------------------------------------------------- data: fine today, keep it so
def test_fine_missing_image_file_named(tmp_path):
    os.remove(make_meta(tmp_path)[0] / "i3.png")
    with pytest.raises(FileNotFoundError, match=r"i3\.png listed at .*image_ids\.txt:4"):
        wdata.get_source(meta_config(tmp_path / "images", tmp_path / "metadata" / "TOY"))


def test_fine_missing_metadata_file_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"class_labels\.txt"):
        meta_source(tmp_path, test__class_labels_txt=None)


@pytest.mark.parametrize(
    "key, text, match",
    [
        ("train__class_labels_txt", "i0.png,0\ni1.png\n", r"class_labels\.txt:2: expected"),
        ("train__class_labels_txt", "i0.png,zero\n", r"class_labels\.txt:1: label must be an integer"),
        ("train__localization_txt", "i0.png,2,3,nan,12\n", r"localization\.txt:1: x1 must be finite"),
        ("train__localization_txt", "i0.png,-2,3,10,12\n", r"localization\.txt:1: invalid box"),
        ("train__localization_txt", "i0.png,2,3,10\n", r"localization\.txt:1: expected"),
        ("train__localization_txt", "i0.png,2,3,10,12,4,4\n", r"localization\.txt:1: expected"),
        ("train__image_ids_txt", "i0.png\ni0.png\n", r"image_ids\.txt:2: image i0\.png listed twice"),
    ],
)
def test_fine_malformed_lines_name_file_and_line(tmp_path, key, text, match):
    with pytest.raises(ValueError, match=match):
        meta_source(tmp_path, **{key: text})


def test_fine_undecodable_image_counted(tmp_path, warnings_log):
    root, meta = make_meta(tmp_path)
    (root / "i4.png").write_bytes(b"not an image")
    src = wdata.get_source(meta_config(root, meta))
    assert src.num_examples("test") == 1 and src.num_skipped("test") == 1
    assert "i4.png" in warnings_log.text


@pytest.mark.parametrize("line", ["3 2 3 8", "3 2 3 8 9 4 4"], ids=["3_numbers", "6_numbers"])
def test_fine_cub_box_line_with_wrong_count_named(tmp_path, line):
    boxes = _CUB["bounding_boxes.txt"].replace("3 2 3 8 9", line)
    with pytest.raises(ValueError, match=r"bounding_boxes\.txt:3: expected"):
        wdata.get_source(cub_config(make_cub(tmp_path, bounding_boxes_txt=boxes)))


def test_fine_cub_class_id_not_in_classes(tmp_path):
    labels = _CUB["image_class_labels.txt"].replace("3 1\n", "3 7\n")
    with pytest.raises(ValueError, match=r"image_class_labels\.txt:3: class id 7"):
        wdata.get_source(cub_config(make_cub(tmp_path, image_class_labels_txt=labels)))


# --------------------------------------------------------------------------- metrics
def _box_acc():
    return metrics.BoxAccuracy(cam_thresholds=np.arange(0, 1, 0.1))


_GT_UPDATES = {
    "BoxAccuracy": lambda m, g: _box_acc().update(m, g),
    "LocalizationAccuracy": lambda m, g: metrics.LocalizationAccuracy().update(
        m, g, [True] * len(m), [True] * len(m)
    ),
    "PointingGame": lambda m, g: metrics.PointingGame().update(m, g),
    "CorLoc": lambda m, g: metrics.CorLoc(2).update(
        np.zeros((len(m), 4)), g, [0] * len(m), image_shape=m.shape[1:]
    ),
}


@pytest.mark.parametrize("metric", sorted(_GT_UPDATES))
@pytest.mark.parametrize(
    "box, match",
    [
        ([2, 2, math.nan, 9], r"not finite"),
        ([2, 2, math.inf, 9], r"not finite"),
        ([-3, 2, 8, 9], r"negative"),
        ([2, 2, 40, 9], r"outside the 16 x 16 map"),
        ([2, 2, 9], r"3 number\(s\).*multiple of 4"),
        ([2, 2, 9, 9, 3, 3], r"6 number\(s\).*multiple of 4"),
        ([9, 2, 2, 9], r"x1 >= x0"),  # fine today
    ],
    ids=["nan", "inf", "negative", "outside_map", "3_numbers", "6_numbers", "flipped"],
)
def test_bad_gt_box_rejected_with_batch_index(metric, box, match):
    maps = np.random.default_rng(0).random((2, S, S))
    gts = [[[1, 1, 5, 5]], [box]]
    with pytest.raises(ValueError, match=r"gt_boxes\[1\].*" + match):
        _GT_UPDATES[metric](maps, gts)


def test_empty_map_raises_with_index():
    with pytest.raises(ValueError, match=r"scoremaps.*\(2, 0, 0\).*empty.*index 0"):
        _box_acc().update(np.zeros((2, 0, 0)), [[[0, 0, 1, 1]]] * 2)


def test_pxap_thresholds_must_start_at_zero():
    with pytest.raises(ValueError, match=r"start at 0.*0\.5"):
        metrics.PxAP(cam_thresholds=[0.5, 0.6, 0.7])


@pytest.mark.parametrize("bad", [(50.9,), (0,), (101,), (math.nan,)])
def test_iou_thresholds_integer_percents(bad):
    with pytest.raises(ValueError, match=r"iou_thresholds.*" + str(bad[0]).replace(".", r"\.")):
        metrics.BoxAccuracy(cam_thresholds=[0.0, 0.5], iou_thresholds=bad)


@pytest.mark.parametrize("make", [metrics.BoxAccuracy, metrics.PxAP], ids=["box", "pxap"])
@pytest.mark.parametrize("bad", [[0.0, math.nan], [0.0, 1.5], [-0.1, 0.5]], ids=["nan", "above1", "negative"])
def test_cam_thresholds_finite_in_unit_interval(make, bad):
    with pytest.raises(ValueError, match=r"cam_thresholds.*\[0, 1\]"):
        make(cam_thresholds=bad)


def test_fine_pxap_nan_map_rejected():
    p = metrics.PxAP(cam_thresholds=[0.0, 0.5])
    with pytest.raises(ValueError, match=r"scoremaps\[0\]"):
        p.update(np.full((1, 4, 4), np.nan), np.ones((1, 4, 4), np.uint8))


# ---------------------------------------------------------------------------- config
def _config(**fields):
    c = config_base.base_config()
    with c.unlocked():
        for path, v in fields.items():
            sec, name = path.split("__")
            c[sec][name] = v
    return c


_BAD_CONFIG = [
    ("train__learning_rate", 0.0),
    ("train__learning_rate", -1e-3),
    ("train__learning_rate", math.nan),
    ("train__epochs", 0),
    ("train__epochs", -2),
    ("train__batch_size", 0),
    ("train__batch_size", -4),
    ("eval__batch_size", 0),
    ("eval__cam_threshold", 1.5),
    ("eval__cam_threshold", math.nan),
    ("eval__cam_threshold_step", 0.0),
    ("eval__iou_thresholds", (50.9,)),
    ("eval__pointing_tolerance", -1),
    ("train__momentum", 1.5),
    ("train__weight_decay", -0.1),
]


@pytest.mark.parametrize("field, value", _BAD_CONFIG, ids=[f"{f}={v}" for f, v in _BAD_CONFIG])
def test_config_numeric_field_out_of_range(field, value):
    name = field.replace("__", ".")
    with pytest.raises(ValueError, match=re.escape(name) + r"=.*" + re.escape(str(value).split(",")[0].strip("(")[:4])):
        config_checks.check_config(_config(**{field: value}))


def test_config_defaults_pass():
    config_checks.check_config(config_base.base_config())


@pytest.mark.parametrize("field, value", [("train__batch_size", 0), ("train__learning_rate", math.nan), ("train__epochs", 0)])
def test_train_refuses_bad_config_before_writing(tmp_path, field, value):
    from wsol_keras.training import trainer
    workdir = tmp_path / "run"
    with pytest.raises(ValueError, match=field.replace("__", r"\.")):
        trainer.train(_config(**{field: value}), str(workdir), None)
    assert not workdir.exists() or not any(workdir.iterdir())


def test_evaluation_refuses_bad_eval_batch_size():
    from wsol_keras.evaluation import evaluator
    with pytest.raises(ValueError, match=r"eval\.batch_size=0"):
        evaluator.evaluate_model(None, None, _config(eval__batch_size=0))



@pytest.mark.parametrize("label", ["99999999999", "2147483648"])
def test_label_beyond_int32_names_the_line(tmp_path, label):
    # Labels are stored as int32: a typo with many digits overflowed in numpy
    # (OverflowError) without a file or line.
    labels = f"i0.png,0\ni1.png,1\ni2.png,{label}\ni3.png,1\n"
    with pytest.raises(ValueError, match=r"class_labels\.txt:3: label .*out of range"):
        meta_source(tmp_path, train__class_labels_txt=labels)
