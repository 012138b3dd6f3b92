"""Speed of box evaluation: wsol_keras.evaluation.metrics.BoxAccuracy vs the reference loop.

The reference is wsolevaluation's BoxEvaluator.accumulate written plainly here
(one cv2.findContours per CAM threshold, calculate_multiple_iou, per-threshold
max). Both run on the same seeded random smooth multi-peak 224x224 maps with
random GT boxes at 1000 CAM thresholds (interval 0.001); the per-threshold hit
counts must be equal (exit status 1 otherwise).

    python bench/eval_speed.py                 # 500 maps, V2 (all contours) and V1
    python bench/eval_speed.py --num_maps 50   # quicker
    python bench/eval_speed.py --modes evaluator --batch_size 32
        # the evaluator's box pass: MaxBoxAcc and MaxBoxAccV2 of each map, as
        # BoxMetrics does in image_size_mode="fixed" (batches stacked, the two
        # rules sharing each map's component tree) against the reference's two loops

Last line: one JSON object; ``ratio`` = reference time / ours (wall clock, V2).
"""

import argparse
import inspect
import json
import sys
import time

import cv2
import numpy as np

from wsol_keras.localization import boxes as boxes_lib
from wsol_keras.evaluation import metrics
def make_maps(n, size, seed):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    maps, gts = [], []
    for _ in range(n):
        m = np.zeros((size, size))
        peaks = []
        for _ in range(rng.integers(2, 7)):
            cx, cy = rng.uniform(0, size, 2)
            sx, sy = rng.uniform(0.03 * size, 0.25 * size, 2)
            peaks.append((cx, cy, sx, sy))
            m += rng.uniform(0.2, 1.0) * np.exp(
                -((xx - cx) ** 2 / (2 * sx**2) + (yy - cy) ** 2 / (2 * sy**2))
            )
        maps.append(boxes_lib.normalize_scoremap(m))
        # GT: 1-2 boxes around random peaks (+-k sigma, jittered), clipped to the map
        g = []
        for j in rng.choice(len(peaks), size=rng.integers(1, 3), replace=False):
            cx, cy, sx, sy = peaks[j]
            k = rng.uniform(1.0, 2.5)
            box = np.array([cx - k * sx, cy - k * sy, cx + k * sx, cy + k * sy])
            box = np.clip(np.round(box + rng.normal(0, 3, 4)), 0, size - 1)
            g.append(
                [
                    min(box[0], box[2]),
                    min(box[1], box[3]),
                    max(box[0], box[2]),
                    max(box[1], box[3]),
                ]
            )
        gts.append(np.array(g))
    return maps, gts


def reference_accumulate(
    scoremap, gt, thresholds, iou_levels, multi_contour, num_correct
):
    """wsolevaluation BoxEvaluator.accumulate with compute_bboxes_from_scoremaps."""
    height, width = scoremap.shape
    scoremap_image = np.expand_dims((scoremap * 255).astype(np.uint8), 2)
    all_boxes, number_of_box_list = [], []
    for threshold in thresholds:
        _, thr = cv2.threshold(
            scoremap_image,
            int(threshold * np.max(scoremap_image)),
            255,
            cv2.THRESH_BINARY,
        )
        contours = cv2.findContours(thr, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[0]
        if len(contours) == 0:
            all_boxes.append(np.asarray([[0, 0, 0, 0]]))
            number_of_box_list.append(1)
            continue
        if not multi_contour:
            contours = [max(contours, key=cv2.contourArea)]
        est = []
        for c in contours:
            x, y, w, h = cv2.boundingRect(c)
            est.append([x, y, min(x + w, width - 1), min(y + h, height - 1)])
        all_boxes.append(np.asarray(est))
        number_of_box_list.append(len(contours))
    box_a = np.concatenate(all_boxes, axis=0)
    box_b = np.asarray(gt)
    num_a, num_b = box_a.shape[0], box_b.shape[0]
    a = np.expand_dims(np.tile(box_a, num_b), axis=1).reshape((num_a, num_b, -1))
    b = np.transpose(
        np.expand_dims(np.tile(box_b, num_a), axis=1).reshape((num_b, num_a, -1)),
        (1, 0, 2),
    )
    min_x = np.maximum(a[:, :, 0], b[:, :, 0])
    min_y = np.maximum(a[:, :, 1], b[:, :, 1])
    max_x = np.minimum(a[:, :, 2], b[:, :, 2])
    max_y = np.minimum(a[:, :, 3], b[:, :, 3])
    inter = np.maximum(0, max_x - min_x + 1) * np.maximum(0, max_y - min_y + 1)
    area_a = (a[:, :, 2] - a[:, :, 0] + 1) * (a[:, :, 3] - a[:, :, 1] + 1)
    area_b = (b[:, :, 2] - b[:, :, 0] + 1) * (b[:, :, 3] - b[:, :, 1] + 1)
    den = area_a + area_b - inter
    deg = np.where(den <= 0)
    den[deg] = 1
    iou = inter / den
    iou[deg] = 0
    idx = 0
    sliced = []
    for nr in number_of_box_list:
        sliced.append(max(iou.max(1)[idx : idx + nr]))
        idx += nr
    for d in iou_levels:
        num_correct[d][np.where(np.asarray(sliced) >= d / 100)[0]] += 1


def run(maps, gts, thresholds, iou_levels, multi_contour):
    ref_counts = {d: np.zeros(len(thresholds), np.int64) for d in iou_levels}
    ours = metrics.BoxAccuracy(thresholds, iou_levels, multi_contour)
    t_ref = t_ours = c_ref = c_ours = 0.0
    for m, g in zip(maps, gts):  # interleaved, so load changes hit both alike
        w0, c0 = time.perf_counter(), time.process_time()
        reference_accumulate(m, g, thresholds, iou_levels, multi_contour, ref_counts)
        w1, c1 = time.perf_counter(), time.process_time()
        ours.update(m[None], [g])
        w2, c2 = time.perf_counter(), time.process_time()
        t_ref += w1 - w0
        t_ours += w2 - w1
        c_ref += c1 - c0
        c_ours += c2 - c1
    equal = all(np.array_equal(ref_counts[d], ours.num_correct[d]) for d in iou_levels)
    return {
        "ref_s": t_ref,
        "ours_s": t_ours,
        "ref_cpu_s": c_ref,
        "ours_cpu_s": c_ours,
        "ratio": t_ref / t_ours,
        "ratio_cpu": c_ref / c_ours,
        "equal": equal,
        "max_box_acc": ours.result()["max_box_acc"],
    }


def run_evaluator(maps, gts, thresholds, batch_size):
    """V1 (largest contour, IoU 50) + V2 (all contours, IoU 30/50/70) per map."""
    rules = (((50,), False), ((30, 50, 70), True))
    ref_counts = [{d: np.zeros(len(thresholds), np.int64) for d in lv} for lv, _ in rules]
    ours = [metrics.BoxAccuracy(thresholds, lv, mc) for lv, mc in rules]
    stacked = "shared" in inspect.signature(metrics.BoxAccuracy.update).parameters
    t_ref = t_ours = c_ref = c_ours = 0.0
    for s in range(0, len(maps), batch_size):  # interleaved batch by batch
        bm, bg = maps[s : s + batch_size], gts[s : s + batch_size]
        w0, c0 = time.perf_counter(), time.process_time()
        for m, g in zip(bm, bg):
            for (lv, mc), counts in zip(rules, ref_counts):
                reference_accumulate(m, g, thresholds, lv, mc, counts)
        w1, c1 = time.perf_counter(), time.process_time()
        if stacked:
            stack = np.stack(bm)
            quantized = boxes_lib.quantize_scoremaps(stack)
            shared = [{} for _ in bm]
            for acc in ours:
                acc.update(stack, bg, quantized, shared)
        else:  # the per-image path (code without stacked updates)
            for m, g in zip(bm, bg):
                for acc in ours:
                    acc.update(m[None], [g])
        w2, c2 = time.perf_counter(), time.process_time()
        t_ref += w1 - w0
        t_ours += w2 - w1
        c_ref += c1 - c0
        c_ours += c2 - c1
    equal = all(
        np.array_equal(counts[d], acc.num_correct[d])
        for counts, acc in zip(ref_counts, ours)
        for d in counts
    )
    return {
        "ref_s": t_ref,
        "ours_s": t_ours,
        "ref_cpu_s": c_ref,
        "ours_cpu_s": c_ours,
        "ratio": t_ref / t_ours,
        "ratio_cpu": c_ref / c_ours,
        "equal": equal,
        "stacked": stacked,
        "max_box_acc": ours[1].result()["max_box_acc"],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num_maps", type=int, default=500)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--interval", type=float, default=0.001)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--modes",
        default="v2,v1",
        help="comma list of v2 (all contours, "
        "IoU 30/50/70), v1 (largest contour, IoU 50) and evaluator (both per map)",
    )
    parser.add_argument("--batch_size", type=int, default=32, help="evaluator mode's batch")
    args = parser.parse_args()
    maps, gts = make_maps(args.num_maps, args.size, args.seed)
    thresholds = np.arange(0, 1, args.interval)
    out = {
        "num_maps": args.num_maps,
        "size": args.size,
        "num_thresholds": len(thresholds),
    }
    ok = True
    for mode in args.modes.split(","):
        iou_levels, mc = ((30, 50, 70), True) if mode == "v2" else ((50,), False)
        if mode == "evaluator":
            r = run_evaluator(maps, gts, thresholds, args.batch_size)
            out["batch_size"] = args.batch_size
        else:
            r = run(maps, gts, thresholds, iou_levels, mc)
        ok &= r["equal"]
        print(
            f"{mode}: reference {r['ref_s']:.2f} s ({1e3 * r['ref_s'] / args.num_maps:.1f} ms/map), "
            f"ours {r['ours_s']:.2f} s ({1e3 * r['ours_s'] / args.num_maps:.2f} ms/map), "
            f"ratio {r['ratio']:.1f}x wall, {r['ratio_cpu']:.1f}x cpu; "
            f"hit counts equal: {r['equal']}; max_box_acc {r['max_box_acc']:.2f}"
        )
        for k, v in r.items():
            out[f"{mode}_{k}"] = round(v, 4) if isinstance(v, float) else v
    first = args.modes.split(",")[0]
    out["ratio"] = out[f"{first}_ratio"]
    out["equal"] = bool(ok)
    print(json.dumps(out))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
