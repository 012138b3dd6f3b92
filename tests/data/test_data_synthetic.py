"""Tests for the built-in synthetic benchmark (wsol_keras.data.synthetic)."""

import ml_collections
import numpy as np
import pytest

from wsol_keras import data as wdata
from wsol_keras.data import synthetic


def _cfg(**kw):
    c = wdata.default_data_config()
    c.image_size = 48
    c.synthetic.num_train = 24
    c.synthetic.num_val = 12
    c.synthetic.num_test = 12
    for k, v in kw.items():
        setattr(c.synthetic, k, v)
    return c


def _elements(source, split):
    return list(source.dataset(split).as_numpy_iterator())


def test_element_structure_dtypes_shapes():
    src = wdata.get_source(_cfg())
    spec = src.dataset("train").element_spec
    s = 48
    expected = {
        "image": ((s, s, 3), "uint8"),
        "label": ((), "int32"),
        "hierarchy": ((2,), "int32"),
        "boxes": ((wdata.MAX_BOXES, 4), "float32"),
        "num_boxes": ((), "int32"),
        "mask": ((s, s), "uint8"),
        "has_mask": ((), "bool"),
        "image_id": ((), "string"),
        "original_size": ((2,), "int32"),
    }
    assert set(spec) == set(expected)
    for k, (shape, dtype) in expected.items():
        assert tuple(spec[k].shape) == shape, k
        assert spec[k].dtype.name == dtype, k
    assert wdata.MAX_BOXES == 16
    els = _elements(src, "train")
    assert len(els) == src.num_examples("train") == 24
    for e in els:
        assert e["num_boxes"] == 1 and e["has_mask"]
        assert np.all(e["boxes"][1:] == -1)
        assert set(np.unique(e["mask"])) <= {0, 1}


def test_same_seed_identical_bytes_and_different_seed_differs():
    a = _elements(wdata.get_source(_cfg(seed=7)), "train")
    b = _elements(wdata.get_source(_cfg(seed=7)), "train")
    c = _elements(wdata.get_source(_cfg(seed=8)), "train")
    for x, y in zip(a, b):
        for k in x:
            assert np.array_equal(x[k], y[k]), k
    assert any(not np.array_equal(x["image"], z["image"]) for x, z in zip(a, c))


def test_image_i_does_not_depend_on_split_size():
    small = wdata.get_source(_cfg(num_train=5)).arrays("train")
    big = wdata.get_source(_cfg(num_train=24)).arrays("train")
    assert np.array_equal(small["image"], big["image"][:5])
    assert np.array_equal(small["mask"], big["mask"][:5])


def test_splits_differ():
    src = wdata.get_source(_cfg(num_train=12, num_val=12, num_test=12))
    tr, va, te = (src.arrays(s)["image"] for s in ("train", "val", "test"))
    for x, y in ((tr, va), (tr, te), (va, te)):
        assert not any(np.array_equal(x[i], y[i]) for i in range(12))
    ids = set(src.arrays("train")["image_id"]) | set(src.arrays("val")["image_id"])
    assert len(ids) == 24


def test_part_fraction_and_part_inside_object():
    src = wdata.get_source(_cfg(num_train=60))
    a = src.arrays("train")
    for i in range(60):
        obj = a["mask"][i].astype(bool)
        part = a["part_mask"][i].astype(bool)
        assert np.all(obj[part]), "part pixels must belong to the object"
        frac = part.sum() / obj.sum()
        assert 0.05 <= frac <= 0.15, (i, frac)


def test_box_equals_mask_extent():
    src = wdata.get_source(_cfg())
    for e in _elements(src, "test"):
        ys, xs = np.nonzero(e["mask"])
        expected = np.array([xs.min(), ys.min(), xs.max(), ys.max()], np.float32)
        np.testing.assert_array_equal(e["boxes"][0], expected)


def test_hierarchy_two_levels_and_consistent_with_labels():
    src = wdata.get_source(_cfg())
    assert src.num_classes == 8 and len(src.class_names) == 8
    assert src.hierarchy.shape == (8, 2) and src.hierarchy.dtype == np.int32
    assert src.hierarchy_sizes == [4, 2]
    # Classes 2g and 2g+1 share group g; groups 0,1 -> supergroup 0, groups 2,3 -> 1.
    np.testing.assert_array_equal(src.hierarchy[:, 0], [0, 0, 1, 1, 2, 2, 3, 3])
    np.testing.assert_array_equal(src.hierarchy[:, 1], [0, 0, 0, 0, 1, 1, 1, 1])
    for e in _elements(src, "val"):
        np.testing.assert_array_equal(e["hierarchy"], src.hierarchy[e["label"]])
    # Class names of a group share the body word and differ in the part word.
    groups = [n.split("-")[0] for n in src.class_names]
    assert (
        groups
        == ["ellipse"] * 2 + ["roundbox"] * 2 + ["diamond"] * 2 + ["triangle"] * 2
    )
    assert len(set(src.class_names)) == 8


def test_labels_cover_all_classes_and_objects_vary():
    src = wdata.get_source(_cfg(num_train=200))
    a = src.arrays("train")
    assert set(a["label"].tolist()) == set(range(8))
    area = (a["box"][:, 2] - a["box"][:, 0] + 1) * (a["box"][:, 3] - a["box"][:, 1] + 1)
    assert area.std() > 0.05 * area.mean()  # random scale
    w = a["box"][:, 2] - a["box"][:, 0] + 1
    h = a["box"][:, 3] - a["box"][:, 1] + 1
    assert np.mean(np.abs(np.log(w / h)) > np.log(1.3)) > 0.2  # elongated objects


def test_other_sizes_and_class_counts():
    c = _cfg(num_groups=3, classes_per_group=3, num_train=6)
    c.image_size = 32
    src = wdata.get_source(c)
    assert src.num_classes == 9 and src.hierarchy_sizes == [3, 2]
    e = next(src.dataset("train").as_numpy_iterator())
    assert e["image"].shape == (32, 32, 3)


@pytest.mark.parametrize(
    "knob,value",
    [("num_groups", 5), ("classes_per_group", 0), ("part_fraction", (0.01, 0.1))],
)
def test_bad_knobs_raise_naming_the_field(knob, value):
    with pytest.raises(ValueError, match=knob):
        wdata.get_source(_cfg(**{knob: value}))


def test_unknown_source_and_split():
    c = _cfg()
    c.name = "nope"
    with pytest.raises(ValueError, match="nope"):
        wdata.get_source(c)
    with pytest.raises(ValueError, match="bogus"):
        wdata.get_source(_cfg()).dataset("bogus")


def test_default_config_fields():
    c = wdata.default_data_config()
    assert isinstance(c, ml_collections.ConfigDict)
    assert (
        c.name == "synthetic" and c.image_size == 64 and c.fatal_decode_errors is False
    )
    assert 1200 <= c.synthetic.num_train <= 2000
    assert synthetic.class_names() == wdata.get_source(c).class_names
