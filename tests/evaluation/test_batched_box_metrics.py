"""Box metrics of a batch of same-size maps scored as one stack.

MaxBoxAcc / MaxBoxAccV2 (Choe et al., "Evaluating Weakly Supervised Object
Localization Methods Right", CVPR 2020, Sec. 4.1), Loc and CorLoc counted from
a stacked batch must equal the counts of the maps scored one at a time; the
boxes themselves are checked against wsolevaluation's loop in test_boxes.py.
"""

import numpy as np
import pytest

from wsol_keras.configs import base
from wsol_keras.evaluation import metrics as metrics_lib
from wsol_keras.evaluation import protocol
from wsol_keras.localization import boxes as boxes_lib

S = 48


def _maps(n, seed):
    """Smooth multi-peak maps in [0, 1] with 1-2 GT boxes around peaks."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:S, 0:S]
    maps, gts = [], []
    for _ in range(n):
        m = np.zeros((S, S))
        peaks = []
        for _ in range(rng.integers(1, 6)):
            cx, cy = rng.uniform(0, S, 2)
            sx, sy = rng.uniform(1.5, 12, 2)
            peaks.append((cx, cy, sx, sy))
            m += rng.uniform(0.2, 1) * np.exp(-((xx - cx) ** 2 / (2 * sx**2) + (yy - cy) ** 2 / (2 * sy**2)))
        maps.append(boxes_lib.normalize_scoremap(m).astype(np.float32))
        g = []
        for cx, cy, sx, sy in peaks[: rng.integers(1, 3)]:
            x0, y0 = np.clip([cx - 2 * sx, cy - 2 * sy], 0, S - 1)
            x1, y1 = np.clip([cx + 2 * sx, cy + 2 * sy], 0, S - 1)
            g.append([np.floor(x0), np.floor(y0), np.ceil(x1), np.ceil(y1)])
        gts.append(np.array(g, np.float64))
    return maps, gts


def _config(box_method):
    config = base.base_config()
    config.data.image_size = S
    config.eval.cam_threshold_step = 0.01
    config.eval.box_method = box_method
    return config


@pytest.mark.parametrize("box_method", protocol.BOX_METHODS)
@pytest.mark.parametrize("regressor", [False, True])
def test_stacked_batches_count_what_the_per_image_path_counts(box_method, regressor):
    rng = np.random.default_rng(1)
    batched = protocol.BoxMetrics(_config(box_method), 0.3, num_classes=5)
    each = protocol.BoxMetrics(_config(box_method), 0.3, num_classes=5)
    for batch in range(3):
        maps, gts = _maps(6, seed=10 + batch)
        views = [
            protocol.View(m, g, m, rng.uniform(0, S - 1, 4).round() if regressor else None)
            for m, g in zip(maps, gts)
        ]
        top1, top5 = rng.uniform(size=6) < 0.5, rng.uniform(size=6) < 0.8
        classes = rng.integers(0, 5, 6)
        batched.update(views, top1, top5, classes)
        each.update_each(views, top1, top5, classes)
    got, want = batched.result(), each.result()
    assert got == want
    assert batched.v1.num_images == 18
    for d, curve in each.curves().items():
        np.testing.assert_array_equal(batched.curves()[d], curve)


def test_box_accuracy_stack_and_shared_work_equal_one_map_at_a_time():
    maps, gts = _maps(8, seed=3)
    thresholds = np.arange(0, 1, 0.005)
    one = {mc: metrics_lib.BoxAccuracy(thresholds, (30, 50, 70), mc) for mc in (False, True)}
    for m, g in zip(maps, gts):
        for acc in one.values():
            acc.update(m[None], [g])
    stack = np.stack(maps)
    shared = [{} for _ in maps]
    quantized = boxes_lib.quantize_scoremaps(stack)
    for mc in (False, True):  # the second reuses the first's component trees
        acc = metrics_lib.BoxAccuracy(thresholds, (30, 50, 70), mc)
        acc.update(stack, gts, quantized, shared)
        for d in (30, 50, 70):
            np.testing.assert_array_equal(acc.num_correct[d], one[mc].num_correct[d])
    assert all("euler" in s or "plateaus" in s for s in shared)


def test_quantize_scoremaps_is_the_per_map_truncation_and_names_the_bad_map():
    maps, _ = _maps(3, seed=4)
    stack = np.stack(maps)
    want = np.stack([boxes_lib.quantize_scoremap(m) for m in maps])
    np.testing.assert_array_equal(boxes_lib.quantize_scoremaps(stack), want)
    # float32 128/255 truncates to 128 as in float64 (wsolevaluation's t2n)
    assert boxes_lib.quantize_scoremaps(np.full((1, 2, 2), 128 / 255, np.float32))[0, 0, 0] == 128
    stack[2, 1, 1] = np.nan
    with pytest.raises(ValueError, match=r"scoremaps\[2\] contains NaN"):
        boxes_lib.quantize_scoremaps(stack)
    stack[2, 1, 1] = 1.5
    with pytest.raises(ValueError, match=r"scoremaps\[2\] must lie in \[0, 1\]"):
        boxes_lib.quantize_scoremaps(stack)
