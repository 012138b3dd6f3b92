"""data.name='tfds' on tfds.testing.mock_data (no download) for every builder named
in the README: caltech_birds2011 (single label, box, mask), voc/2007 and
coco/2017 (multi-label)."""

import ml_collections
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from wsol_keras import data as data_lib
from wsol_keras.training import trainer
from wsol_keras.data import multilabel as ml
from wsol_keras.data import tfds_source

S = 32


def _cfg(name, **kw):
    c = data_lib.default_data_config()
    c.name = "tfds"
    c.tfds_name = name
    c.image_size = S
    for k, v in kw.items():
        c[k] = v
    return c


@pytest.fixture
def mock():
    with tfds.testing.mock_data(num_examples=4, policy=tfds.testing.MockPolicy.USE_CODE):
        yield


def test_yxyx_to_xyxy_by_hand():
    # (ymin, xmin, ymax, xmax) = (0.1, 0.2, 0.5, 0.6) on H=100, W=200
    # -> x0 = 0.2*200 = 40, y0 = 0.1*100 = 10, x1 = 0.6*200 = 120, y1 = 0.5*100 = 50.
    out = tfds_source._yxyx_to_xyxy_px(tf.constant([[0.1, 0.2, 0.5, 0.6]]), 100, 200)
    np.testing.assert_allclose(out.numpy(), [[40, 10, 120, 50]], rtol=1e-6)


def test_caltech_birds2011_element_box_and_mask(mock):
    source = data_lib.get_source(_cfg("caltech_birds2011"))
    assert not getattr(source, "multi_label", False)
    assert source.num_classes == 200 and source.splits == ("train", "val", "test")
    assert source.num_examples("train") == 4
    raw = list(source._raw["train"].take(2).as_numpy_iterator())
    els = list(source.dataset("train").take(2).as_numpy_iterator())
    for ex, el in zip(raw, els):
        assert el["image"].shape == (S, S, 3) and el["image"].dtype == np.uint8
        assert el["label"] == ex["label"]
        ymin, xmin, ymax, xmax = ex["bbox"]
        # Normalized box times S (x * W * S / W), worked out independently.
        np.testing.assert_allclose(el["boxes"][0], [xmin * S, ymin * S, xmax * S, ymax * S], atol=1e-3)
        assert el["num_boxes"] == 1 and np.all(el["boxes"][1:] == -1)
        assert el["has_mask"]
        m = tf.image.resize(ex["segmentation_mask"], [S, S], method="nearest").numpy()[..., 0]
        np.testing.assert_array_equal(el["mask"], (m > 127).astype(np.uint8))
        assert el["hierarchy"].shape == (source.hierarchy.shape[1],)


@pytest.mark.parametrize("name,difficult_key", [("voc/2007", "is_difficult"), ("coco/2017", "is_crowd")])
def test_multilabel_builders(mock, name, difficult_key):
    source = data_lib.get_source(_cfg(name))
    assert source.multi_label
    spec = ml.multilabel_element_spec(S, source.num_classes)
    raw = list(source._raw["test"].take(2).as_numpy_iterator())
    els = list(source.dataset("test").take(2).as_numpy_iterator())
    assert set(els[0]) == set(spec)
    for ex, el in zip(raw, els):
        obj = ex["objects"]
        k = min(len(obj["label"]), len(obj["bbox"]), len(obj[difficult_key]))
        expect = np.zeros(source.num_classes, np.int32)
        expect[obj["label"][:k][~obj[difficult_key][:k]]] = 1  # difficult: not positive
        np.testing.assert_array_equal(el["label"], expect)
        n = min(k, ml.MAX_OBJECTS)
        assert el["num_objects"] == n
        np.testing.assert_array_equal(el["object_labels"][:n], obj["label"][:n])
        np.testing.assert_array_equal(el["object_difficult"][:n], obj[difficult_key][:n])
        b = obj["bbox"][:n]
        np.testing.assert_allclose(el["object_boxes"][:n], np.stack([b[:, 1], b[:, 0], b[:, 3], b[:, 2]], 1) * S, atol=1e-3)
        assert np.all(el["object_labels"][n:] == -1)
        np.testing.assert_array_equal(el["original_size"], ex["image"].shape[:2])


def test_voc_class_names_from_builder(mock):
    source = data_lib.get_source(_cfg("voc/2007"))
    assert source.class_names == list(ml.VOC_CLASSES)


def test_unprepared_dataset_says_how_to_build(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"tfds build caltech_birds2011"):
        data_lib.get_source(_cfg("caltech_birds2011", data_dir=str(tmp_path)))


def test_unknown_builder_is_named():
    with pytest.raises(ValueError, match="no_such_builder"):
        data_lib.get_source(_cfg("no_such_builder"))


def _smoke_config(method, **method_kw):
    from wsol_keras.configs import synthetic_cam, synthetic_spn  # noqa: F401

    mod = {"cam": synthetic_cam, "spn": synthetic_spn}[method]
    config = mod.get_config("smoke")
    config.data.image_size = S
    config.train.batch_size = 2
    config.train.steps_per_epoch = 1
    config.eval.batch_size = 2
    for k, v in method_kw.items():
        config.method[k] = v
    return config


def _valid_caltech(self, *args, **kwargs):
    """Mock caltech_birds2011 examples with ordered boxes (the default mock's are
    random and unordered, which evaluation rightly rejects)."""
    rng = np.random.default_rng(0)

    def gen():
        for i in range(6):
            h, w = 40 + i, 50 - i
            y0, x0 = rng.uniform(0, 0.4, 2)
            mask = np.zeros((h, w, 1), np.uint8)
            mask[int(y0 * h):, int(x0 * w):] = 255
            yield {
                "image": rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
                "image/filename": f"img{i}.jpg",
                "label": i % 3,
                "label_name": "x",
                "bbox": np.asarray([y0, x0, 0.9, 0.95], np.float32),
                "segmentation_mask": mask,
            }

    return tf.data.Dataset.from_generator(
        gen,
        output_types=self.info.features.dtype,
        output_shapes=self.info.features.shape,
    )


@pytest.mark.slow
def test_train_and_evaluate_on_caltech_birds2011(tmp_path):
    from wsol_keras.evaluation import evaluator
    config = _smoke_config("cam")
    config.data.name = "tfds"
    config.data.tfds_name = "caltech_birds2011"
    with tfds.testing.mock_data(as_dataset_fn=_valid_caltech, policy=tfds.testing.MockPolicy.USE_CODE):
        model, source, info = trainer.train(config, str(tmp_path / "run"))
        assert info["num_classes"] == 200 and not info["multi_label"]
        metrics = evaluator.evaluate_and_report(model, source, config, str(tmp_path / "run"))
    assert 0.0 <= metrics["pxap"] <= 100.0
    assert 0.0 <= metrics["max_box_acc_v2"] <= 100.0


@pytest.mark.slow
@pytest.mark.parametrize("name,num_classes", [("voc/2007", 20), ("coco/2017", 80)])
def test_spn_trains_and_runs_its_protocol_cam_refuses(mock, tmp_path, name, num_classes):
    from wsol_keras.evaluation import multilabel as multilabel_eval
    config = _smoke_config("cam")
    config.data.name = "tfds"
    config.data.tfds_name = name
    with pytest.raises(ValueError, match="multi-label"):
        trainer.train(config, str(tmp_path / "cam"))
    config = _smoke_config("spn", multi_label=True)
    config.data.name = "tfds"
    config.data.tfds_name = name
    model, source, info = trainer.train(config, str(tmp_path / "spn"))
    assert info["multi_label"] and info["num_classes"] == num_classes
    config.eval.max_images = 2
    r = multilabel_eval.spn_protocol(model, source, config, corloc_split="test")
    assert len(r["per_class"]["ap"]) == num_classes
    for k in ("pointing_all", "corloc"):
        assert np.isnan(r[k]) or 0.0 <= r[k] <= 100.0


def test_voc07_config_with_the_readme_tfds_overrides_asks_for_tfds_split_names(
    mock, monkeypatch
):
    """configs/voc07_vgg16_spn.py names VOC's image sets (trainval / test);
    with only the README's --config.data.name=tfds --config.data.tfds_name=voc/2007
    overrides, the builder must be asked for TFDS's names (TFDS voc/2007 has
    train / validation / test and no 'trainval': the real builder raises)."""
    from wsol_keras.configs import voc07_vgg16_spn
    from wsol_keras.data import tfds_source

    asked = []
    real_builder = tfds_source._builder

    def recording_builder(*args, **kwargs):
        builder = real_builder(*args, **kwargs)
        as_dataset = builder.as_dataset

        def record(split, **kw):
            asked.append(split)
            return as_dataset(split=split, **kw)

        builder.as_dataset = record
        return builder

    monkeypatch.setattr(tfds_source, "_builder", recording_builder)
    config = voc07_vgg16_spn.get_config()
    config.data.name = "tfds"
    config.data.tfds_name = "voc/2007"
    config.data.image_size = S
    source = data_lib.get_source(config.data)
    assert asked == ["train+validation", "test", "test"]
    assert source.splits == ("train", "val", "test")
