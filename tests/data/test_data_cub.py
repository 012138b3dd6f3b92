"""Tests for the CUB-200-2011 loader on a tiny fixture written here."""

import io
import logging
import os

import numpy as np
import pytest
from PIL import Image

from wsol_keras import data as wdata
S = 16
RED = (200, 50, 30)


def _write(path, data: bytes):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def _png(arr) -> bytes:
    b = io.BytesIO()
    Image.fromarray(arr).save(b, "PNG")
    return b.getvalue()


def _jpeg(arr, mode=None) -> bytes:
    b = io.BytesIO()
    im = Image.fromarray(arr)
    if mode:
        im = im.convert(mode)
    im.save(b, "JPEG", quality=100)
    return b.getvalue()


def make_cub(root, corrupt=True):
    """3 classes, 5 images (h=20, w=30): RGB PNG, grayscale JPEG, RGBA PNG,
    CMYK JPEG, and a corrupt file. Image 1 has a soft segmentation."""
    classes = [
        "001.Black_footed_Albatross",
        "002.Laysan_Albatross",
        "003.Groove_billed_Ani",
    ]
    rgb = np.zeros((20, 30, 3), np.uint8)
    rgb[:] = RED
    rgba = np.zeros((20, 30, 4), np.uint8)
    rgba[..., :3] = (10, 220, 90)
    rgba[..., 3] = 60
    files = [
        ("001.Black_footed_Albatross/a_1.png", _png(rgb), 1, 1),
        (
            "001.Black_footed_Albatross/a_2.jpg",
            _jpeg(np.full((20, 30), 77, np.uint8)),
            1,
            1,
        ),
        ("002.Laysan_Albatross/b_1.png", _png(rgba), 2, 0),
        ("003.Groove_billed_Ani/c_1.jpg", _jpeg(rgb, "CMYK"), 3, 1),
        (
            "003.Groove_billed_Ani/c_2.jpg",
            b"this is not an image" if corrupt else _jpeg(rgb),
            3,
            0,
        ),
        # every class needs a training image (a class without one is refused)
        ("002.Laysan_Albatross/b_2.png", _png(rgb), 2, 1),
    ]
    for rel, blob, _, _ in files:
        _write(os.path.join(root, "images", rel), blob)
    with open(os.path.join(root, "classes.txt"), "w") as f:
        f.writelines(f"{i + 1} {c}\n" for i, c in enumerate(classes))
    with open(os.path.join(root, "images.txt"), "w") as f:
        f.writelines(f"{i + 1} {r[0]}\n" for i, r in enumerate(files))
    with open(os.path.join(root, "image_class_labels.txt"), "w") as f:
        f.writelines(f"{i + 1} {r[2]}\n" for i, r in enumerate(files))
    with open(os.path.join(root, "train_test_split.txt"), "w") as f:
        f.writelines(f"{i + 1} {r[3]}\n" for i, r in enumerate(files))
    with open(os.path.join(root, "bounding_boxes.txt"), "w") as f:
        # x y w h
        f.write(
            "1 3.0 4.0 12.0 8.0\n2 0.0 0.0 29.0 19.0\n3 6.0 2.0 15.0 10.0\n"
            "4 1.0 1.0 5.0 5.0\n5 2.0 2.0 3.0 3.0\n6 1.0 1.0 4.0 4.0\n"
        )
    seg = np.zeros((20, 30), np.uint8)
    seg[:10] = 200  # top half: foreground (> 127)
    seg[10:, :15] = 100  # soft but below 0.5: background
    _write(
        os.path.join(root, "segmentations", "001.Black_footed_Albatross", "a_1.png"),
        _png(seg),
    )
    return root


def _config(root, **kw):
    c = wdata.default_data_config()
    c.name = "cub"
    c.root = str(root)
    c.image_size = S
    # These tests look training images up in "train"; the val holdout (the
    # default) is tested in test_val_modes.
    c.cub_val = "train_subset"
    for k, v in kw.items():
        setattr(c, k, v)
    return c


def _by_id(source, split):
    return {
        e["image_id"].decode(): e for e in source.dataset(split).as_numpy_iterator()
    }


def test_structure_splits_and_classes(tmp_path):
    src = wdata.get_source(_config(make_cub(tmp_path / "CUB")))
    assert src.num_classes == 3
    assert src.class_names[0] == "001.Black_footed_Albatross"
    assert src.splits == ("train", "val", "test")
    train = _by_id(src, "train")
    assert set(train) == {
        "001.Black_footed_Albatross/a_1.png",
        "001.Black_footed_Albatross/a_2.jpg",
        "003.Groove_billed_Ani/c_1.jpg",
        "002.Laysan_Albatross/b_2.png",
    }
    test = _by_id(src, "test")  # the corrupt c_2.jpg is skipped
    assert set(test) == {"002.Laysan_Albatross/b_1.png"}
    e = train["001.Black_footed_Albatross/a_1.png"]
    assert e["image"].shape == (S, S, 3) and e["image"].dtype == np.uint8
    assert e["boxes"].shape == (16, 4) and e["boxes"].dtype == np.float32
    assert e["mask"].shape == (S, S) and e["mask"].dtype == np.uint8
    assert e["label"] == 0 and e["num_boxes"] == 1
    assert train["003.Groove_billed_Ani/c_1.jpg"]["label"] == 2


def test_box_rescaled_by_hand(tmp_path):
    src = wdata.get_source(_config(make_cub(tmp_path / "CUB")))
    e = _by_id(src, "train")["001.Black_footed_Albatross/a_1.png"]
    # x y w h = 3 4 12 8 -> xyxy 3 4 15 12 in a 30 x 20 image; S/w = 16/30, S/h = 16/20.
    np.testing.assert_allclose(
        e["boxes"][0], [3 * 16 / 30, 4 * 0.8, 15 * 16 / 30, 12 * 0.8], rtol=1e-6
    )
    assert np.all(e["boxes"][1:] == -1)


def test_colour_conversions(tmp_path):
    src = wdata.get_source(_config(make_cub(tmp_path / "CUB")))
    tr, te = _by_id(src, "train"), _by_id(src, "test")
    rgb = tr["001.Black_footed_Albatross/a_1.png"]["image"]
    assert np.all(rgb == np.array(RED, np.uint8))
    gray = tr["001.Black_footed_Albatross/a_2.jpg"]["image"].astype(int)
    assert np.all(np.abs(gray - 77) <= 1)
    rgba = te["002.Laysan_Albatross/b_1.png"]["image"]
    assert np.all(rgba == np.array((10, 220, 90), np.uint8))  # alpha dropped
    cmyk = tr["003.Groove_billed_Ani/c_1.jpg"]["image"].astype(int)
    assert np.all(np.abs(cmyk - np.array(RED)) <= 4)


def test_soft_segmentation_thresholded_and_resized_nearest(tmp_path):
    src = wdata.get_source(_config(make_cub(tmp_path / "CUB")))
    tr = _by_id(src, "train")
    e = tr["001.Black_footed_Albatross/a_1.png"]
    assert e["has_mask"]
    # Nearest resize 20 -> 16 rows (half-pixel centres): output row r reads input row
    # floor((r + 0.5) * 20 / 16): rows 0..7 read input rows 0..9 (value 200 -> 1),
    # rows 8..15 read rows 10..19 (values 100 or 0 -> 0).
    expected = np.zeros((S, S), np.uint8)
    expected[:8] = 1
    np.testing.assert_array_equal(e["mask"], expected)
    other = tr["001.Black_footed_Albatross/a_2.jpg"]
    assert not other["has_mask"] and np.all(other["mask"] == 0)


def test_corrupt_image_skipped_counted_and_logged(tmp_path, caplog):
    src = wdata.get_source(_config(make_cub(tmp_path / "CUB")))
    with caplog.at_level(logging.WARNING):
        assert src.num_examples("test") == 1
    assert src.num_skipped("test") == 1
    assert src.skipped_paths("test")[0].endswith("c_2.jpg")
    assert "c_2.jpg" in caplog.text and "skipped 1" in caplog.text


def test_corrupt_image_dropped_without_validation(tmp_path):
    src = wdata.get_source(_config(make_cub(tmp_path / "CUB"), validate_images=False))
    assert len(list(src.dataset("test").as_numpy_iterator())) == 1


def test_fatal_decode_errors_names_the_file(tmp_path):
    src = wdata.get_source(
        _config(make_cub(tmp_path / "CUB"), fatal_decode_errors=True)
    )
    src.dataset("train")  # clean split is fine
    with pytest.raises(ValueError, match=r"c_2\.jpg.*images\.txt:5"):
        src.dataset("test")


def test_val_modes(tmp_path):
    root = make_cub(tmp_path / "CUB", corrupt=False)
    sub = wdata.get_source(_config(root, val_per_class=1))
    val = set(_by_id(sub, "val"))
    # One training image per class.
    assert len(val) == 3
    assert sub.num_examples("train") == 4  # train_subset: val stays in train
    default = wdata.default_data_config()
    assert default.cub_val == "holdout"  # issue 9: val held out by default
    hold = wdata.get_source(_config(root, val_per_class=1, cub_val="holdout"))
    # Holdout keeps one training image per class: class 1 (2 images) gives
    # one to val, classes 2 and 3 (1 image each) none.
    hold_val = set(_by_id(hold, "val"))
    assert len(hold_val) == 1 and hold_val < val
    assert hold.num_examples("train") == 3
    assert not hold_val & set(_by_id(hold, "train"))
    test = wdata.get_source(_config(root, cub_val="test"))
    assert set(_by_id(test, "val")) == set(_by_id(test, "test"))
    with pytest.raises(ValueError, match="cub_val"):
        wdata.get_source(_config(root, cub_val="bogus"))


def test_malformed_line_names_file_and_line(tmp_path):
    root = make_cub(tmp_path / "CUB")
    lines = open(os.path.join(root, "bounding_boxes.txt")).read().splitlines()
    lines[2] = "3 6.0 two 15.0 10.0"
    open(os.path.join(root, "bounding_boxes.txt"), "w").write("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"bounding_boxes\.txt:3"):
        wdata.get_source(_config(root))


def test_wrong_field_count_names_file_and_line(tmp_path):
    root = make_cub(tmp_path / "CUB")
    with open(os.path.join(root, "train_test_split.txt"), "a") as f:
        f.write("7\n")
    with pytest.raises(ValueError, match=r"train_test_split\.txt:7"):
        wdata.get_source(_config(root))


def test_missing_image_file_names_it(tmp_path):
    root = make_cub(tmp_path / "CUB")
    os.remove(os.path.join(root, "images", "002.Laysan_Albatross", "b_1.png"))
    with pytest.raises(FileNotFoundError, match=r"b_1\.png.*images\.txt:3"):
        wdata.get_source(_config(root))


def test_missing_metadata_file_names_it(tmp_path):
    root = make_cub(tmp_path / "CUB")
    os.remove(os.path.join(root, "bounding_boxes.txt"))
    with pytest.raises(FileNotFoundError, match="bounding_boxes.txt"):
        wdata.get_source(_config(root))
    with pytest.raises(FileNotFoundError, match="nowhere"):
        wdata.get_source(_config(tmp_path / "nowhere"))


def test_hierarchy_from_names_and_from_file(tmp_path):
    root = make_cub(tmp_path / "CUB")
    src = wdata.get_source(_config(root))
    # Level 1: last word (albatross, albatross, ani); level 2: sqrt(2) ~ 1 chunk.
    np.testing.assert_array_equal(src.hierarchy, [[0, 0], [0, 0], [1, 0]])
    assert src.hierarchy_sizes == [2, 1]
    with open(os.path.join(root, "hierarchy.txt"), "w") as f:
        f.write("# class parent grandparent\n1 10 7\n2 11 7\n3 11 7\n")
    src = wdata.get_source(_config(root))
    np.testing.assert_array_equal(src.hierarchy, [[0, 0], [1, 0], [1, 0]])
    e = _by_id(src, "train")["003.Groove_billed_Ani/c_1.jpg"]
    np.testing.assert_array_equal(e["hierarchy"], [1, 0])
