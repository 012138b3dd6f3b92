"""The folder-per-class source (``data.name="folder"``) on tiny folders
written here, and the README's ``wsol-train --config.data.name=folder``
recipe end to end."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import cv2

from wsol_keras import data as wdata

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def write_folder(root, classes=("cat", "dog"), per_class=10, size=(40, 30), boxes=True,
                 sub=""):
    """root/<sub>/<class>/<i>.png: a bright rectangle (class 0: red, class 1:
    blue) on grey noise; returns {relative path: box xyxy}."""
    rng = np.random.default_rng(0)
    w, h = size
    written = {}
    for label, name in enumerate(classes):
        folder = os.path.join(root, sub, name)
        os.makedirs(folder, exist_ok=True)
        for i in range(per_class):
            img = rng.integers(60, 120, (h, w, 3), dtype=np.uint8)
            x0, y0 = int(rng.integers(0, w // 2)), int(rng.integers(0, h // 2))
            x1, y1 = x0 + w // 3, y0 + h // 3
            img[y0:y1, x0:x1] = (230, 30, 30) if label == 0 else (30, 30, 230)
            rel = "/".join(p for p in (sub, name, f"{i:03d}.png") if p)
            assert cv2.imwrite(os.path.join(root, rel), img[..., ::-1])
            written[rel] = (x0, y0, x1, y1)
    if boxes:
        with open(os.path.join(root, "localization.txt"), "a") as f:
            for rel, b in written.items():
                f.write(f"{rel},{b[0]},{b[1]},{b[2]},{b[3]}\n")
    return written


def _arrays(src, split):
    out = {}
    for element in src.dataset(split).as_numpy_iterator():
        for k, v in element.items():
            out.setdefault(k, []).append(v)
    return {k: np.stack(v) for k, v in out.items()}


def _source(root, **kw):
    cfg = wdata.default_data_config()
    cfg.name, cfg.root, cfg.image_size = "folder", str(root), 20
    cfg.update(kw)
    return wdata.get_source(cfg)


def test_classes_labels_and_deterministic_carved_splits(tmp_path):
    written = write_folder(tmp_path / "d", classes=("zebra", "ant"), per_class=10)
    a = _source(tmp_path / "d")
    b = _source(tmp_path / "d")
    assert a.class_names == ["ant", "zebra"]  # sorted, as image_dataset_from_directory
    assert a.splits == ("train", "val", "test")
    ids = {s: [x.decode() for x in _arrays(a, s)["image_id"]] for s in a.splits}
    # round(10 * 0.1) = 1 image per class for val and for test, 8 left to train
    assert [len(ids[s]) for s in a.splits] == [16, 2, 2]
    assert set(ids["train"]) | set(ids["val"]) | set(ids["test"]) == set(written)
    assert not set(ids["val"]) & set(ids["test"]) and not set(ids["val"]) & set(ids["train"])
    assert ids == {s: [x.decode() for x in _arrays(b, s)["image_id"]] for s in b.splits}
    test = _arrays(a, "test")
    for image_id, label, box, n in zip(test["image_id"], test["label"], test["boxes"],
                                       test["num_boxes"]):
        image_id = image_id.decode()
        assert label == (0 if image_id.startswith("ant/") else 1)
        x0, y0, x1, y1 = written[image_id]
        # 40 x 30 -> 20 x 20: x by 0.5, y by 2/3
        np.testing.assert_allclose(box[0], [x0 / 2, y0 * 2 / 3, x1 / 2, y1 * 2 / 3], rtol=1e-5)
        assert n == 1


def test_split_folders_and_no_boxes(tmp_path):
    root = tmp_path / "d"
    write_folder(root, per_class=4, sub="train", boxes=False)
    write_folder(root, per_class=2, sub="test", boxes=False)
    src = _source(root, val_fraction=0.5)
    assert src.splits == ("train", "val", "test")
    assert src.num_examples("test") == 4 and src.num_examples("val") == 4
    assert src.num_examples("train") == 4
    assert int(_arrays(src, "test")["num_boxes"].sum()) == 0


def test_bad_folders_are_one_line_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="one sub-folder of images per class"):
        _source(tmp_path / "missing")
    write_folder(tmp_path / "d", per_class=3, boxes=False)
    os.makedirs(tmp_path / "d" / "empty_class")
    with pytest.raises(ValueError, match="empty_class: no images"):
        _source(tmp_path / "d")
    write_folder(tmp_path / "e", per_class=3, boxes=False)
    with open(tmp_path / "e" / "localization.txt", "w") as f:
        f.write("cat/000.png,1,1,5,5\nbird/9.png,1,1,5,5\n")
    with pytest.raises(ValueError, match=r"localization.txt:2: image bird/9.png"):
        _source(tmp_path / "e")
    write_folder(tmp_path / "f", per_class=3, sub="train", boxes=False)
    write_folder(tmp_path / "f", classes=("cow",), per_class=1, sub="test", boxes=False)
    with pytest.raises(ValueError, match="cow: class folder not in the training"):
        _source(tmp_path / "f")


@pytest.mark.slow  # one wsol-train subprocess (TensorFlow import + a smoke run)
def test_wsol_train_recipe_on_a_folder(tmp_path):
    root = tmp_path / "my_images"
    write_folder(root, per_class=12)
    workdir = tmp_path / "run"
    args = [
        "--config=synthetic_cam:smoke",
        "--config.data.name=folder",
        f"--config.data.root={root}",
        "--config.data.image_size=32",
        f"--workdir={workdir}",
    ]
    proc = subprocess.run(
        [sys.executable, "-c",
         "import sys; from wsol_keras.training.trainer import run_main; "
         "sys.argv = ['wsol-train'] + sys.argv[1:]; run_main()", *args],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
        env=dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2", CI="1"),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.load(open(workdir / "metrics.json"))
    # 12 images per class: round(1.2) = 1 each for val and test
    assert metrics["num_images"] == 2 and metrics["num_images_with_boxes"] == 2
    assert metrics["threshold_split"] == "val"
    assert 0.0 <= metrics["max_box_acc_v2"] <= 100.0
    assert "cat" in open(workdir / "config.json").read()
