"""SLT-Net's pseudo box (Sec. 3.1-3.2) and its frame, on hand-made maps.

The regressor learns the box of the localizer's top-K ACAM (Eq. 9); Sec. 3.2
gives the rule of the CAM it builds on: threshold the map, take the box of the
largest connected component.  Expected boxes are worked out by hand in the
evaluator's pixel convention (wsolevaluation: ``x0, y0, min(x1 + 1, W - 1),
min(y1 + 1, H - 1)``), normalized by ``S - 1``.
"""

import os

import numpy as np
import pytest
from PIL import Image

from wsol_keras import data as data_lib
from wsol_keras.configs import synthetic_slt
from wsol_keras.evaluation import protocol as eval_protocol
from wsol_keras.localization.boxes import (
    component_box_from_maps,
    pseudo_box_from_maps,
    reference_boxes_from_scoremap,
)
from wsol_keras.models.registry import build_model


def slt_model(size, num_classes=4, **method):
    config = synthetic_slt.get_config("smoke")
    config.data.image_size = size
    config.method.regressor_hidden = 8
    for k, v in method.items():
        setattr(config.method, k, v)
    info = {
        "num_classes": num_classes,
        "class_names": [f"c{i}" for i in range(num_classes)],
        "hierarchy_sizes": [2],
        "image_size": size,
    }
    return build_model(config, info), config


def cams_from_map(m, num_classes=4):
    """[1, h, w, C] cams whose top-2 average (classes 0 and 1) is `m`; logits rank 0, 1 first."""
    cams = np.zeros((1,) + m.shape + (num_classes,), np.float32)
    cams[0, ..., 0] = m
    cams[0, ..., 1] = m
    logits = np.array([[3.0, 2.0, -1.0, -2.0][:num_classes]], np.float32)
    return cams, logits


def object_with_stray_response():
    """16 x 16: object rows 4..11, cols 3..10; one stray pixel at row 14, col 15."""
    m = np.zeros((16, 16), np.float32)
    m[4:12, 3:11] = 1.0
    m[14, 15] = 0.9
    return m


def test_pseudo_box_is_the_largest_component_not_the_extent():
    model, _ = slt_model(16)
    cams, logits = cams_from_map(object_with_stray_response())
    got = np.asarray(model.localizer_boxes(cams, logits, (16, 16)))[0]
    # Largest component: cols 3..10, rows 4..11 -> (3, 4, 11, 12) / 15.
    # (The extent of every pixel above 0.2 would be (3, 4, 15, 14) / 15.)
    np.testing.assert_allclose(got, np.array([3, 4, 11, 12]) / 15.0, atol=1e-6)


def test_component_box_agrees_with_the_cv2_reference_on_random_maps():
    rng = np.random.default_rng(0)
    maps = rng.uniform(size=(6, 12, 12)).astype(np.float32) ** 3
    maps /= maps.max(axis=(1, 2), keepdims=True)
    got = np.asarray(component_box_from_maps(maps, 0.3)) * 11.0
    for m, box in zip(maps, got):
        ref = reference_boxes_from_scoremap(m, [0.3])[0][0][0]
        np.testing.assert_allclose(box, ref, atol=1e-5)


def test_extent_rule_kept_and_bad_rule_refused():
    m = object_with_stray_response()[None]
    np.testing.assert_allclose(
        np.asarray(pseudo_box_from_maps(m, 0.2, "extent"))[0],
        np.array([3, 4, 15, 14]) / 15.0,
        atol=1e-6,
    )
    with pytest.raises(ValueError, match="pseudo_box='union'"):
        slt_model(16, pseudo_box="union")


def test_constant_map_gives_the_full_image():
    got = np.asarray(component_box_from_maps(np.zeros((1, 8, 8), np.float32), 0.2))
    np.testing.assert_allclose(got[0], [0, 0, 1, 1])


def write_cub(root, size=96):
    """Two classes x 2 images of `size` px with a bright square at (24, 30)-(72, 66)."""
    rows = []
    for c in range(2):
        for j in range(2):
            img = np.full((size, size, 3), 40, np.uint8)
            img[30:66, 24:72] = 220
            rel = f"{c + 1:03d}.c{c}/{j}.png"
            os.makedirs(os.path.join(root, "images", f"{c + 1:03d}.c{c}"), exist_ok=True)
            Image.fromarray(img).save(os.path.join(root, "images", rel))
            rows.append((rel, c + 1))
    w = lambda name, lines: open(os.path.join(root, name), "w").write("\n".join(lines) + "\n")
    w("classes.txt", ["1 001.c0", "2 002.c1"])
    w("images.txt", [f"{i + 1} {r[0]}" for i, r in enumerate(rows)])
    w("image_class_labels.txt", [f"{i + 1} {r[1]}" for i, r in enumerate(rows)])
    w("train_test_split.txt", [f"{i + 1} 1" for i in range(len(rows))])
    w("bounding_boxes.txt", [f"{i + 1} 24 30 48 36" for i in range(len(rows))])


@pytest.mark.parametrize("mode", ["fixed", "original"])
def test_96px_files_64px_model_boxes_in_the_metrics_frame(tmp_path, mode):
    """A localizer map that is exactly the object (in the 64 px input) gives a
    pseudo box, and a regressor that learned it a box, that the metrics score
    in their own frame (64 px, or the 96 px file with image_size_mode=original)
    within a pixel of the ground truth."""
    write_cub(str(tmp_path))
    _, config = slt_model(64, num_classes=3)
    config.data.name, config.data.root = "cub", str(tmp_path)
    config.data.cub_val, config.data.image_size = "train_subset", 64
    config.eval.image_size_mode = mode
    source = data_lib.get_source(config.data)
    batch = next(iter(source.dataset("train").batch(4)))
    assert batch["image"].shape[1:3] == (64, 64)
    # The loader put the 96 px box (24, 30, 72, 66) into the 64 px input: x 2/3.
    np.testing.assert_allclose(batch["boxes"].numpy()[0, 0], [16, 20, 48, 44], atol=1e-4)
    model, _ = slt_model(64, num_classes=3)
    m = np.zeros((64, 64), np.float32)
    m[20:44, 16:48] = 1.0  # the object's pixels in the model input
    cams, logits = cams_from_map(m, num_classes=3)
    # loss_terms takes the pseudo box's frame from the input batch (64 px).
    pseudo = np.asarray(model.localizer_boxes(cams, logits, batch["image"].shape[1:3]))
    results = {"boxes": np.repeat(pseudo, 4, 0), "maps": np.repeat(m[None], 4, 0)}
    view = eval_protocol.views(batch, results, np.ones(4, bool), config)[0]
    scale = 1.0 if mode == "fixed" else 1.5
    np.testing.assert_allclose(view.pred_box, view.gt[0], atol=1.01 * scale)
    np.testing.assert_allclose(view.gt[0], np.array([16, 20, 48, 44]) * scale, atol=1.0)
