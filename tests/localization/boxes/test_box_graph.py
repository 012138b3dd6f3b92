"""wsol_keras.localization.boxes.graph: the in-graph TF box equals the cv2 reference path."""

import cv2
import numpy as np
import pytest
import tensorflow as tf

from wsol_keras.localization import boxes
from .test_boxes import brute_force_boxes, path, smooth_maps  # noqa: F401 (fixture)

# --- in-graph TensorFlow path ------------------------------------------------------------


def test_tf_box_matches_cv2_largest_contour():
    maps = np.stack(smooth_maps(12, 64, seed=3)).astype(np.float32)
    fn = tf.function(lambda x, t: boxes.tf_largest_component_box(x, t))
    agree = total = 0
    for t in (0.2, 0.5):
        got = fn(tf.constant(maps), tf.constant(t)).numpy()
        for m, g in zip(maps, got):
            ref = brute_force_boxes(m, [t], multi_contour=False)[0][0]
            agree += int(np.array_equal(g, ref))
            total += 1
    assert agree / total >= 0.95, f"agreement {agree}/{total}"


def test_tf_box_worked_example_empty_and_saved_model(tmp_path):
    m = np.zeros((2, 12, 12), np.float32)
    m[0, 1:3, 1:3] = 1.0
    m[0, 5:9, 4:9] = 0.6
    # map 1 stays all zero: empty foreground -> [0, 0, 0, 0]
    got = boxes.tf_largest_component_box(m, 0.3).numpy()
    np.testing.assert_array_equal(got, [[4, 5, 9, 9], [0, 0, 0, 0]])

    class Boxer(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, None, None], tf.float32)])
        def __call__(self, x):
            return boxes.tf_largest_component_box(x, 0.3)

    tf.saved_model.save(Boxer(), str(tmp_path / "sm"))
    loaded = tf.saved_model.load(str(tmp_path / "sm"))
    np.testing.assert_array_equal(loaded(tf.constant(m)).numpy(), got)


def test_cut_level_at_quantization_boundaries_matches_cv2(path):
    # pixels at and next to the uint8 steps k / 255 (float32 neighbours), with cuts
    # right at those steps: the TF path must quantize and cut like the cv2 path
    vals = []
    for k in (1, 77, 128, 200, 254):
        v = np.float32(k / 255)
        vals += [np.nextafter(v, np.float32(0)), v, np.nextafter(v, np.float32(1))]
    for v in vals:
        m = np.zeros((6, 6), np.float32)
        m[0, 0] = 1.0
        m[2:5, 2:5] = v
        for t in (float(v), float(v) - 1e-4, float(v) + 1e-4):
            t = min(max(t, 0.0), 0.999)
            ref = brute_force_boxes(m, [t], multi_contour=False)[0]
            np.testing.assert_array_equal(
                boxes.boxes_from_scoremap(m, [t], False)[0][0], ref
            )
            got = boxes.tf_largest_component_box(m[None], t).numpy()[0]
            np.testing.assert_array_equal(got, ref[0], err_msg=f"v={v!r} t={t!r}")


def test_tf_area_criterion_counts_holes_like_cv2(path):
    m = np.zeros((26, 26), np.float32)
    m[1:13, 1:13] = 1.0
    m[2:12, 2:12] = 0.0  # ring: 44 pixels, outer contour area 11 * 11 = 121
    m[15:23, 2:10] = 1.0  # solid blob: 64 pixels, contour area 7 * 7 = 49
    ring, blob = [1, 1, 13, 13], [2, 15, 10, 23]
    np.testing.assert_array_equal(
        boxes.boxes_from_scoremap(m, [0.5], False)[0][0], [ring]
    )
    np.testing.assert_array_equal(
        boxes.tf_largest_component_box(m, 0.5).numpy(), [ring]
    )
    np.testing.assert_array_equal(
        boxes.tf_largest_component_box(m, 0.5, criterion="pixels").numpy(), [blob]
    )
