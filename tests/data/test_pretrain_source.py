"""The procedural pretraining set (wsol_keras.data.pretrain_source)."""

import numpy as np
import pytest

from wsol_keras import data as data_lib
from wsol_keras.data import pretrain_source as ps
from wsol_keras.data import synthetic


def _source(size=32, **pretrain):
    cfg = data_lib.default_data_config()
    cfg.name = "pretrain"
    cfg.image_size = size
    for k, v in pretrain.items():
        cfg.pretrain[k] = v
    return data_lib.get_source(cfg)


def test_at_least_200_classes_from_four_factors():
    names = ps.class_names()
    assert len(names) == len(set(names)) == 10 * 4 * 2 * 3 >= 200
    for label in (0, 1, 7, 123, 239):
        f, t, c, p = ps.decode_label(label)
        assert names[label] == "-".join(
            (ps.FAMILIES[f], ps.TEXTURES[t], ps.COLOURINGS[c], ps.PARTS[p])
        )
    h = ps.hierarchy()
    assert h.shape == (240, 1) and sorted(set(h[:, 0])) == list(range(10))


def test_classes_share_no_factor_with_the_benchmark():
    # The benchmark's classes: a body from synthetic.GROUPS plus a part from
    # synthetic.PARTS; neither is a family or a part here.
    assert not set(ps.FAMILIES) & set(synthetic.GROUPS)
    assert not set(ps.PARTS) & set(synthetic.PARTS)


def test_images_are_a_function_of_seed_split_and_index():
    cfg = dict(_source()._cfg)
    a = ps.render(0, [1], 5, 32, cfg)
    b = ps.render(0, [1], 5, 32, cfg)
    c = ps.render(0, [2], 5, 32, cfg)
    np.testing.assert_array_equal(a[0], b[0])
    assert a[1] == b[1]
    assert np.abs(a[0].astype(int) - c[0].astype(int)).max() > 0


def test_elements_follow_the_source_contract():
    source = _source(num_val=6)
    assert source.num_classes == 240 and source.splits == ("train", "val", "test")
    elements = list(source.dataset("val").as_numpy_iterator())
    assert len(elements) == 6
    labels = set()
    for e in elements:
        assert e["image"].shape == (32, 32, 3) and e["image"].dtype == np.uint8
        assert e["mask"].shape == (32, 32) and set(np.unique(e["mask"])) <= {0, 1}
        assert e["num_boxes"] == 1 and e["has_mask"]
        x0, y0, x1, y1 = e["boxes"][0]
        assert 0 <= x0 <= x1 < 32 and 0 <= y0 <= y1 < 32
        assert (e["boxes"][1:] == -1).all()
        ys, xs = np.nonzero(e["mask"])
        if len(xs):  # visible object pixels lie inside the (unoccluded) box
            assert xs.min() >= x0 and xs.max() <= x1 and ys.min() >= y0 and ys.max() <= y1
        assert e["hierarchy"][0] == ps.hierarchy()[e["label"], 0]
        labels.add(int(e["label"]))
    assert len(labels) > 1


def test_training_stream_resumes_exactly_and_depends_on_the_seed():
    source = _source()
    full = [e["image"] for e in source.train_dataset("train", 3, 1.0, True).take(5).as_numpy_iterator()]
    resumed = [e["image"] for e in source.train_dataset("train", 3, 1.0, True, skip=2).take(3).as_numpy_iterator()]
    for a, b in zip(full[2:], resumed):
        np.testing.assert_array_equal(a, b)
    other = next(source.train_dataset("train", 4, 1.0, True).as_numpy_iterator())["image"]
    assert np.abs(other.astype(int) - full[0].astype(int)).max() > 0


def test_bad_knobs_name_the_field():
    with pytest.raises(ValueError, match="data.pretrain.object_scale"):
        _source(object_scale=(0.1, 0.5))
    with pytest.raises(ValueError, match="data.image_size"):
        _source(size=16)
