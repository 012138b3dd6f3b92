"""data.name='voc': a generated VOC folder (Annotations/*.xml, ImageSets/Main, JPEGImages)."""

import os

import cv2
import numpy as np
import pytest

from wsol_keras import data as data_lib
from wsol_keras.data import multilabel as ml

S = 32


def _xml(w, h, objects):
    objs = "".join(
        f"<object><name>{n}</name><pose>Left</pose><truncated>0</truncated>"
        f"<difficult>{int(d)}</difficult><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin>"
        f"<xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>"
        for n, d, b in objects
    )
    return (f"<annotation><folder>VOC2007</folder><size><width>{w}</width>"
            f"<height>{h}</height><depth>3</depth></size>{objs}</annotation>")


def make_voc(root, images, sets):
    for d in ("Annotations", "ImageSets/Main", "JPEGImages"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    for iid, (w, h, objects) in images.items():
        with open(os.path.join(root, "Annotations", iid + ".xml"), "w") as f:
            f.write(_xml(w, h, objects))
        img = np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)
        cv2.imwrite(os.path.join(root, "JPEGImages", iid + ".jpg"), img)
    for name, ids in sets.items():
        with open(os.path.join(root, "ImageSets", "Main", name + ".txt"), "w") as f:
            f.write("\n".join(ids) + "\n")
    return str(root)


IMAGES = {
    "000001": (100, 50, [("dog", 0, (10, 5, 60, 45)), ("person", 1, (1, 1, 20, 30))]),
    "000002": (80, 80, [("dog", 0, (8, 8, 40, 40)), ("dog", 0, (40, 40, 80, 80))]),
    "000003": (64, 48, [("tvmonitor", 0, (0, 0, 63, 47))]),
}


def _cfg(root, **kw):
    c = data_lib.default_data_config()
    c.name = "voc"
    c.root = root
    c.image_size = S
    c.split_map = "train=trainval,test=test"
    for k, v in kw.items():
        c[k] = v
    return c


def test_voc_folder_elements(tmp_path):
    root = make_voc(tmp_path, IMAGES, {"trainval": ["000001", "000002"], "test": ["000003"]})
    source = data_lib.get_source(_cfg(root))
    assert source.multi_label and source.class_names == list(ml.VOC_CLASSES)
    assert source.num_examples("train") == 2
    els = list(source.dataset("train").as_numpy_iterator())
    dog, person = ml.VOC_CLASSES.index("dog"), ml.VOC_CLASSES.index("person")
    e = els[0]
    assert e["image_id"] == b"000001"
    expect = np.zeros(20, np.int32)
    expect[dog] = 1  # the only person is difficult: a negative, as SPN.pytorch trains
    np.testing.assert_array_equal(e["label"], expect)
    # 100 x 50 image -> S=32: x * 32/100, y * 32/50; VOC numbers kept as written.
    np.testing.assert_allclose(
        e["object_boxes"][:2],
        [[10 * 0.32, 5 * 0.64, 60 * 0.32, 45 * 0.64], [1 * 0.32, 1 * 0.64, 20 * 0.32, 30 * 0.64]],
        rtol=1e-5,
    )
    np.testing.assert_array_equal(e["object_labels"][:3], [dog, person, -1])
    np.testing.assert_array_equal(e["object_difficult"][:2], [False, True])
    np.testing.assert_array_equal(e["original_size"], [50, 100])
    assert e["num_objects"] == 2 and e["num_boxes"] == 2
    assert e["label"].sum() == 1 and els[1]["label"][dog] == 1 and els[1]["label"].sum() == 1
    ann = source.annotations("train")
    np.testing.assert_array_equal(ann[1]["boxes"], [[8, 8, 40, 40], [40, 40, 80, 80]])


def test_voc_errors_name_the_file(tmp_path):
    images = dict(IMAGES)
    images["000004"] = (10, 10, [("unicorn", 0, (0, 0, 5, 5))])
    root = make_voc(tmp_path, images, {"trainval": ["000004"], "test": ["000003"]})
    with pytest.raises(ValueError, match=r"000004\.xml.*unicorn"):
        data_lib.get_source(_cfg(root))
    root2 = make_voc(tmp_path / "b", IMAGES, {"trainval": ["000001", "000009"], "test": ["000003"]})
    with pytest.raises(FileNotFoundError, match=r"000009.*trainval\.txt:2"):
        data_lib.get_source(_cfg(root2))
    images3 = {"000005": (10, 10, [("dog", 0, (6, 0, 5, 5))])}
    root3 = make_voc(tmp_path / "c", images3, {"trainval": ["000005"], "test": ["000005"]})
    with pytest.raises(ValueError, match=r"000005\.xml: <object> #1 invalid box"):
        data_lib.get_source(_cfg(root3))


def test_voc_and_tfds_voc_boxes_agree():
    # TFDS's voc builder stores (ymin/h, xmin/w, ymax/h, xmax/w) of the XML's numbers;
    # converted back they equal the folder source's boxes.
    import tensorflow as tf
    from wsol_keras.data import tfds_source

    h, w = 50, 100
    xml_box = np.array([10, 5, 60, 45], np.float32)
    tfds_box = np.array([[5 / h, 10 / w, 45 / h, 60 / w]], np.float32)
    out = tfds_source._yxyx_to_xyxy_px(tf.constant(tfds_box), h, w).numpy()
    np.testing.assert_allclose(out[0], xml_box, rtol=1e-6)


def test_voc07_spn_config_is_the_released_setting():
    from wsol_keras.configs import voc07_vgg16_spn

    c = voc07_vgg16_spn.get_config()
    assert c.data.name == "voc" and c.method.name == "spn" and c.method.multi_label
    # runme.sh / demo_voc2007.py / engine.py: lr 0.01 one group, batch 16, 20 epochs,
    # /10 at epoch 10, SGD momentum 0.9, wd 5e-4, warp to S+30 and crop S.
    assert (c.train.learning_rate, c.train.head_lr_multiplier) == (0.01, 1.0)
    assert (c.train.batch_size, c.train.epochs, c.train.lr_decay_epochs) == (16, 20, 10)
    assert c.train.optimizer == "sgd" and c.train.momentum == 0.9
    assert c.train.weight_decay == pytest.approx(5e-4)
    assert c.train.crop_scale == pytest.approx(254 / 224)


@pytest.mark.slow
def test_voc07_spn_smoke_trains_and_runs_the_spn_protocol(tmp_path):
    from wsol_keras.configs import voc07_vgg16_spn
    from wsol_keras.evaluation import multilabel as multilabel_eval
    from wsol_keras.training import trainer
    root = make_voc(tmp_path / "voc", IMAGES, {"trainval": ["000001", "000002", "000003"], "test": ["000001", "000003"]})
    config = voc07_vgg16_spn.get_config("smoke")
    config.data.root = root
    config.data.image_size = S
    config.model.backbone = "small_cnn"
    config.model.weights = None
    config.method.num_maps = 16
    config.train.batch_size = 2
    config.eval.batch_size = 2
    model, source, info = trainer.train(config, str(tmp_path / "run"))
    assert info["multi_label"]
    r = multilabel_eval.evaluate_and_report(model, source, config, str(tmp_path / "run"))
    assert os.path.exists(tmp_path / "run" / "spn_protocol.json")
    assert "CorLoc" in multilabel_eval.format_table(r)
    for k in ("pointing_all", "corloc", "classification_map"):
        assert 0.0 <= r[k] <= 100.0, (k, r[k])
    # 000003's tvmonitor box covers the whole image: its point is always a hit.
    tv = ml.VOC_CLASSES.index("tvmonitor")
    assert r["per_class"]["pointing_all"][tv] == 1.0
    # Zhang et al.'s subset: 000001 has a small object (person 19x29 px < 1/4 of
    # 100x50) and two classes; 000003 has one class: one difficult image.
    assert r["num_difficult_images"] == 1
