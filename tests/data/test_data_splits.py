"""Train / val / test are disjoint for every source (issue 9 item 2): the CAM
threshold chosen on val must come from images the classifier never trained on.
Disjointness is checked on file paths / ids and on the pixels themselves."""

import hashlib
import os

import cv2
import numpy as np
import pytest

from wsol_keras import data as wdata
S = 16


def _img(path, seed):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    arr = np.random.default_rng(seed).integers(0, 255, (20, 30, 3), dtype=np.uint8)
    assert cv2.imwrite(str(path), arr)  # PNG: lossless, so pixels identify images


def _write(path, lines):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("".join(f"{line}\n" for line in lines))


def _cub(tmp_path):
    """3 classes x 6 training images + 2 test images each (released CUB: no val)."""
    root = tmp_path / "CUB"
    rows = []
    for c in range(3):
        for k in range(8):
            rows.append((f"{c:03d}.C{c}/im{k}.png", c + 1, int(k < 6)))
    for i, (rel, _, _) in enumerate(rows):
        _img(root / "images" / rel, i)
    _write(root / "classes.txt", [f"{c + 1} {c:03d}.C{c}" for c in range(3)])
    _write(root / "images.txt", [f"{i + 1} {r[0]}" for i, r in enumerate(rows)])
    _write(root / "image_class_labels.txt", [f"{i + 1} {r[1]}" for i, r in enumerate(rows)])
    _write(root / "train_test_split.txt", [f"{i + 1} {r[2]}" for i, r in enumerate(rows)])
    _write(root / "bounding_boxes.txt", [f"{i + 1} 1 2 10 8" for i in range(len(rows))])
    c = wdata.default_data_config()
    c.name, c.root, c.image_size, c.val_per_class = "cub", str(root), S, 2
    return c


def _meta(tmp_path):
    root, meta = tmp_path / "images", tmp_path / "metadata" / "TOY"
    n = 0
    for split, count in (("train", 6), ("val", 2), ("test", 2)):
        ids = [f"{split}/{i}.png" for i in range(count)]
        for p in ids:
            _img(root / p, n)
            n += 1
        _write(meta / split / "image_ids.txt", ids)
        _write(meta / split / "class_labels.txt", [f"{p},{i % 2}" for i, p in enumerate(ids)])
    c = wdata.default_data_config()
    c.name, c.root, c.metadata, c.image_size = "wsol_metadata", str(root), str(meta), S
    return c


def _synthetic(tmp_path):
    c = wdata.default_data_config()
    c.image_size = 32
    c.synthetic.num_train, c.synthetic.num_val, c.synthetic.num_test = 24, 8, 8
    return c


def _contents(source, split):
    ids, pixels = set(), set()
    for e in source.dataset(split).as_numpy_iterator():
        ids.add(e["image_id"])
        pixels.add(hashlib.sha1(e["image"].tobytes()).hexdigest())
    return ids, pixels


@pytest.mark.parametrize("make", [_cub, _meta, _synthetic], ids=["cub", "wsol_metadata", "synthetic"])
def test_train_val_test_disjoint(tmp_path, make):
    src = wdata.get_source(make(tmp_path))
    assert set(src.splits) == {"train", "val", "test"}
    parts = {s: _contents(src, s) for s in src.splits}
    for s, (ids, _) in parts.items():
        assert ids, f"split {s} is empty"
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        assert not parts[a][0] & parts[b][0], f"{a} and {b} share ids"
        assert not parts[a][1] & parts[b][1], f"{a} and {b} share images"


def test_cub_val_is_a_seeded_fixed_number_per_class(tmp_path):
    config = _cub(tmp_path)
    a, b = wdata.get_source(config), wdata.get_source(config)
    va = sorted(e["image_id"] for e in a.dataset("val").as_numpy_iterator())
    vb = sorted(e["image_id"] for e in b.dataset("val").as_numpy_iterator())
    assert va == vb  # fixed seed: the same images every time
    labels = [e["label"] for e in a.dataset("val").as_numpy_iterator()]
    assert np.bincount(labels).tolist() == [2, 2, 2]  # val_per_class of each
    # 18 released training images, 6 of them held out
    assert a.num_examples("train") == 12 and a.num_examples("test") == 6
