"""Tests for the wsolevaluation metadata loader on tiny fixtures written here."""

import logging
import os

import cv2
import numpy as np
import pytest

from wsol_keras import data as wdata
S = 16


def _img(path, arr):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    assert cv2.imwrite(str(path), arr)


def _lines(path, lines):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def make_boxes_dataset(tmp_path):
    """CUB-style metadata: test has an image with two boxes and a corrupt image."""
    root = tmp_path / "images"
    meta = tmp_path / "metadata" / "TOY"
    bgr = np.zeros((20, 30, 3), np.uint8)
    bgr[:] = (30, 50, 200)  # BGR of RGB (200, 50, 30)
    _img(root / "a" / "1.jpg", bgr)
    _img(root / "a" / "2.png", np.full((20, 30), 120, np.uint8))  # grayscale
    rgba = np.zeros((24, 40, 4), np.uint8)
    rgba[..., :3] = (90, 220, 10)  # BGR order for cv2: RGB (10, 220, 90)
    rgba[..., 3] = 255
    _img(root / "b" / "3.png", rgba)  # RGBA, 40 x 24
    os.makedirs(root / "b", exist_ok=True)
    (root / "b" / "4.jpg").write_bytes(b"\xff\xd8\xff garbage")
    _lines(meta / "train" / "image_ids.txt", ["a/1.jpg", "a/2.png"])
    _lines(meta / "train" / "class_labels.txt", ["a/1.jpg,0", "a/2.png,1"])
    _lines(meta / "test" / "image_ids.txt", ["a/1.jpg", "b/3.png", "b/4.jpg"])
    _lines(meta / "test" / "class_labels.txt", ["a/1.jpg,0", "b/3.png,2", "b/4.jpg,2"])
    _lines(
        meta / "test" / "image_sizes.txt",
        ["a/1.jpg,30,20", "b/3.png,40,24", "b/4.jpg,9,9"],
    )
    _lines(
        meta / "test" / "localization.txt",
        [
            "a/1.jpg,3,4,15,12",
            "b/3.png,0,0,20,12",
            "b/3.png,10,6,39,23",
            "b/4.jpg,1,1,2,2",
        ],
    )
    return root, meta


def make_mask_dataset(tmp_path):
    """OpenImages-style metadata: two instance masks and an ignore mask."""
    root = tmp_path / "oi"
    meta = tmp_path / "metadata" / "OI"
    _img(root / "val" / "x.jpg", np.full((16, 16, 3), 90, np.uint8))
    m1 = np.zeros((16, 16), np.uint8)
    m1[:4] = 255
    m2 = np.zeros((16, 16), np.uint8)
    m2[:, :2] = 255
    ign = np.zeros((16, 16), np.uint8)
    ign[:8, :8] = 255
    _img(root / "masks" / "x_1.png", m1)
    _img(root / "masks" / "x_2.png", m2)
    _img(root / "masks" / "x_ig.png", ign)
    _lines(meta / "val" / "image_ids.txt", ["val/x.jpg"])
    _lines(meta / "val" / "class_labels.txt", ["val/x.jpg,1"])
    _lines(
        meta / "val" / "localization.txt",
        [
            "val/x.jpg,masks/x_1.png,masks/x_ig.png",
            "val/x.jpg,masks/x_2.png,masks/x_ig.png",
        ],
    )
    _lines(meta / "class_names.txt", ["cat", "dog"])
    return root, meta


def _config(root, meta, **kw):
    c = wdata.default_data_config()
    c.name = "wsol_metadata"
    c.root = str(root)
    c.metadata = str(meta)
    c.image_size = S
    for k, v in kw.items():
        setattr(c, k, v)
    return c


def _by_id(source, split):
    return {
        e["image_id"].decode(): e for e in source.dataset(split).as_numpy_iterator()
    }


def test_structure_and_names(tmp_path):
    src = wdata.get_source(_config(*make_boxes_dataset(tmp_path)))
    assert src.splits == ("train", "test")
    assert src.num_classes == 3 and src.class_names == ["class_0", "class_1", "class_2"]
    ds = src.dataset("train")
    spec = ds.element_spec
    assert spec["image"].shape == (S, S, 3) and spec["image"].dtype.name == "uint8"
    assert spec["boxes"].shape == (16, 4) and spec["mask"].shape == (S, S)
    assert spec["hierarchy"].shape == (2,)
    tr = _by_id(src, "train")
    assert [tr[k]["label"] for k in ("a/1.jpg", "a/2.png")] == [0, 1]
    assert np.all(np.abs(tr["a/1.jpg"]["image"].astype(int) - (200, 50, 30)) <= 3)
    assert np.all(tr["a/2.png"]["image"] == 120)  # grayscale -> RGB
    assert tr["a/1.jpg"]["num_boxes"] == 0 and not tr["a/1.jpg"]["has_mask"]
    assert np.all(tr["a/1.jpg"]["boxes"] == -1)


def test_multiple_boxes_rescaled_by_hand(tmp_path):
    src = wdata.get_source(_config(*make_boxes_dataset(tmp_path)))
    te = _by_id(src, "test")
    e = te["b/3.png"]  # 40 x 24 image: S/w = 0.4, S/h = 2/3
    assert e["num_boxes"] == 2
    np.testing.assert_allclose(
        e["boxes"][:2], [[0, 0, 8, 8], [4, 4, 15.6, 23 * 16 / 24]], rtol=1e-6
    )
    assert np.all(e["boxes"][2:] == -1)
    assert np.all(e["image"] == (10, 220, 90))  # RGBA -> RGB
    np.testing.assert_allclose(
        te["a/1.jpg"]["boxes"][0],
        [3 * 16 / 30, 4 * 0.8, 15 * 16 / 30, 12 * 0.8],
        rtol=1e-6,
    )


def test_corrupt_image_skipped_and_counted(tmp_path, caplog):
    src = wdata.get_source(_config(*make_boxes_dataset(tmp_path)))
    with caplog.at_level(logging.WARNING):
        assert src.num_examples("test") == 2
    assert src.num_skipped("test") == 1 and src.num_skipped("train") == 0
    assert "b/4.jpg" in caplog.text
    assert set(_by_id(src, "test")) == {"a/1.jpg", "b/3.png"}


def test_fatal_mode_raises_naming_the_image(tmp_path):
    src = wdata.get_source(
        _config(*make_boxes_dataset(tmp_path), fatal_decode_errors=True)
    )
    with pytest.raises(ValueError, match=r"b/4\.jpg.*image_ids\.txt:3"):
        src.num_examples("test")


def test_masks_union_and_ignore(tmp_path):
    root, meta = make_mask_dataset(tmp_path)
    src = wdata.get_source(_config(root, meta))
    assert src.class_names == ["cat", "dog"] and src.splits == ("val",)
    e = _by_id(src, "val")["val/x.jpg"]
    assert e["has_mask"] and e["num_boxes"] == 0
    expected = np.zeros((S, S), np.uint8)
    expected[:8, :8] = 255  # ignore region ...
    expected[:4] = 1  # ... except where an instance is foreground
    expected[:, :2] = 1
    np.testing.assert_array_equal(e["mask"], expected)


def test_mask_root_separate(tmp_path):
    root, meta = make_mask_dataset(tmp_path)
    os.rename(root / "masks", tmp_path / "masks")
    with pytest.raises(FileNotFoundError, match=r"x_1\.png.*localization\.txt:1"):
        wdata.get_source(_config(root, meta))
    src = wdata.get_source(_config(root, meta, mask_root=str(tmp_path)))
    assert _by_id(src, "val")["val/x.jpg"]["has_mask"]


@pytest.mark.parametrize(
    "fname,line,bad",
    [
        ("class_labels.txt", 2, "b/3.png,two"),
        ("localization.txt", 3, "b/3.png,10,6,39"),
        ("localization.txt", 3, "b/3.png,10,6,5,23"),  # x1 < x0
        ("image_sizes.txt", 1, "a/1.jpg,30"),
        ("class_labels.txt", 2, "zzz.jpg,1"),  # not in image_ids.txt
    ],
)
def test_malformed_line_names_file_and_line(tmp_path, fname, line, bad):
    root, meta = make_boxes_dataset(tmp_path)
    p = meta / "test" / fname
    lines = p.read_text().splitlines()
    lines[line - 1] = bad
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=rf"test/{fname}:{line}"):
        wdata.get_source(_config(root, meta))


def test_missing_files_named(tmp_path):
    root, meta = make_boxes_dataset(tmp_path)
    os.remove(root / "a" / "2.png")
    with pytest.raises(FileNotFoundError, match=r"a/2\.png.*train/image_ids\.txt:2"):
        wdata.get_source(_config(root, meta))
    root, meta = make_boxes_dataset(tmp_path / "second")
    os.remove(meta / "test" / "class_labels.txt")
    with pytest.raises(FileNotFoundError, match=r"test/class_labels\.txt"):
        wdata.get_source(_config(root, meta))
    with pytest.raises(FileNotFoundError, match="missing_meta"):
        wdata.get_source(_config(root, tmp_path / "missing_meta"))


def test_hierarchy_file_in_metadata(tmp_path):
    root, meta = make_boxes_dataset(tmp_path)
    _lines(meta / "hierarchy.txt", ["0,5,1", "1,5,1", "2,6,1"])
    src = wdata.get_source(_config(root, meta))
    np.testing.assert_array_equal(src.hierarchy, [[0, 0], [0, 0], [1, 0]])
    assert src.hierarchy_sizes == [2, 1]
    _lines(meta / "hierarchy.txt", ["0,5,1", "1,5,2", "2,6,1"])
    with pytest.raises(ValueError, match="two parents"):
        wdata.get_source(_config(root, meta))
    _lines(meta / "hierarchy.txt", ["0,5,1", "1,5", "2,6,1"])
    with pytest.raises(ValueError, match=r"hierarchy\.txt:2"):
        wdata.get_source(_config(root, meta))


def test_hierarchy_from_names_generic_fallback_by_hand():
    from wsol_keras.data import hierarchy as h

    names = [f"class_{i}" for i in range(9)]
    # No shared last words: level 1 = round(sqrt(9)) = 3 consecutive chunks of 3;
    # level 2 = round(sqrt(3)) = 2 chunks of the 3 groups: [0, 0, 1].
    got = h.hierarchy_from_names(names)
    np.testing.assert_array_equal(got[:, 0], [0, 0, 0, 1, 1, 1, 2, 2, 2])
    np.testing.assert_array_equal(got[:, 1], [0, 0, 0, 0, 0, 0, 1, 1, 1])
    assert h.group_word("001.Black_footed_Albatross") == "albatross"
    assert h.group_word("Red winged Blackbird") == "blackbird"


def test_cluster_hierarchy_recovers_planted_tree():
    from wsol_keras.data import hierarchy as h

    rng = np.random.default_rng(0)
    centres = {0: (0, 0), 1: (0, 3), 2: (100, 0)}  # groups 0 and 1 close, 2 far
    group = [0, 1, 2, 0, 1, 2]
    feats = np.array([centres[g] for g in group], float) + rng.normal(0, 0.1, (6, 2))
    got = h.cluster_hierarchy(feats, sizes=(3, 2), seed=1)
    assert got.shape == (6, 2)
    # Same partition as the planted one, up to renumbering.
    level1 = {tuple(np.flatnonzero(got[:, 0] == k)) for k in range(3)}
    assert level1 == {(0, 3), (1, 4), (2, 5)}
    level2 = {tuple(np.flatnonzero(got[:, 1] == k)) for k in range(2)}
    assert level2 == {(0, 1, 3, 4), (2, 5)}
    with pytest.raises(ValueError, match="cluster size"):
        h.cluster_hierarchy(feats, sizes=(7,))
