"""Agreement of the in-graph TF box (wsol_keras.localization.boxes.tf_largest_component_box)
with the cv2 path of the evaluator (largest contour by cv2.contourArea).

Random seeded multi-peak smooth maps (optionally with noise); for each map and CAM
threshold the TF box must equal the cv2 box exactly. Reports the agreement rate for
both ranking criteria ("area": the contour area cv2 uses, "pixels": pixel count)
and the time per map of the compiled tf.function at batch 1 and batch 16.

    python bench/box_agreement.py                   # 100 maps, 224x224, 5 thresholds
    python bench/box_agreement.py --num_maps 40     # quicker
    python bench/box_agreement.py --peaks 8,16 --sigma 0.02,0.06 --amp 0.8,1.0
                                       # many similar blobs: the ranking matters

Last line: one JSON object (``agreement`` = rate for the default criterion "area").
"""

import argparse
import json
import time

import numpy as np
import tensorflow as tf

from wsol_keras.localization import boxes as boxes_lib
def make_maps(n, size, seed, noise, peaks=(2, 6), sigma=(0.03, 0.25), amp=(0.2, 1.0)):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    maps = []
    for _ in range(n):
        m = np.zeros((size, size))
        for _ in range(rng.integers(peaks[0], peaks[1] + 1)):
            cx, cy = rng.uniform(0, size, 2)
            sx, sy = rng.uniform(sigma[0] * size, sigma[1] * size, 2)
            m += rng.uniform(*amp) * np.exp(
                -((xx - cx) ** 2 / (2 * sx**2) + (yy - cy) ** 2 / (2 * sy**2))
            )
        m += rng.normal(0, noise, m.shape)
        maps.append(boxes_lib.normalize_scoremap(m).astype(np.float32))
    return np.stack(maps)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num_maps", type=int, default=100)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--thresholds", default="0.1,0.2,0.35,0.5,0.7")
    parser.add_argument("--noise", type=float, default=0.0)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--peaks", default="2,6", help="min,max number of Gaussian peaks"
    )
    parser.add_argument(
        "--sigma", default="0.03,0.25", help="min,max peak sigma / size"
    )
    parser.add_argument("--amp", default="0.2,1.0", help="min,max peak amplitude")
    args = parser.parse_args()

    def pair(text, cast=float):
        lo, hi = text.split(",")
        return cast(lo), cast(hi)

    maps = make_maps(
        args.num_maps,
        args.size,
        args.seed,
        args.noise,
        pair(args.peaks, int),
        pair(args.sigma),
        pair(args.amp),
    )
    thresholds = [float(t) for t in args.thresholds.split(",")]
    ref = {
        t: np.stack(
            [boxes_lib.boxes_from_scoremap(m, [t], False)[0][0][0] for m in maps]
        )
        for t in thresholds
    }
    out = {
        "num_maps": args.num_maps,
        "size": args.size,
        "thresholds": thresholds,
        "noise": args.noise,
        "peaks": args.peaks,
        "sigma": args.sigma,
        "amp": args.amp,
    }
    all_got = {}
    for crit in ("area", "pixels"):
        fn = tf.function(
            lambda x, t, c=crit: boxes_lib.tf_largest_component_box(x, t, criterion=c),
            input_signature=[
                tf.TensorSpec([None, None, None], tf.float32),
                tf.TensorSpec([], tf.float32),
            ],
        )
        agree, total, elapsed = 0, 0, 0.0
        for t in thresholds:
            fn(tf.constant(maps[:1]), tf.constant(t))  # trace once
            got = []
            for i in range(0, len(maps), args.batch):
                x = tf.constant(maps[i : i + args.batch])
                t0 = time.perf_counter()
                got.append(fn(x, tf.constant(t)).numpy())
                elapsed += time.perf_counter() - t0
            got = np.concatenate(got)
            all_got[(crit, t)] = got
            same = (got == ref[t]).all(axis=1)
            agree += int(same.sum())
            total += len(same)
        t0 = time.perf_counter()
        n1 = min(20, len(maps))
        for i in range(n1):
            fn(tf.constant(maps[i : i + 1]), tf.constant(thresholds[0])).numpy()
        per_map_b1 = (time.perf_counter() - t0) / n1
        rate = agree / total
        print(
            f"criterion={crit}: identical boxes {agree}/{total} = {100 * rate:.2f}%; "
            f"{1e3 * elapsed / total:.1f} ms/map at batch {args.batch}, "
            f"{1e3 * per_map_b1:.1f} ms/map at batch 1"
        )
        out[f"agreement_{crit}"] = round(rate, 5)
        out[f"ms_per_map_batch{args.batch}_{crit}"] = round(1e3 * elapsed / total, 2)
        out[f"ms_per_map_batch1_{crit}"] = round(1e3 * per_map_b1, 2)
    # cases where the ranking criterion matters (the two TF boxes differ)
    differ = area_right = pixels_right = 0
    for t in thresholds:
        d = ~(all_got[("area", t)] == all_got[("pixels", t)]).all(axis=1)
        differ += int(d.sum())
        area_right += int((all_got[("area", t)][d] == ref[t][d]).all(axis=1).sum())
        pixels_right += int((all_got[("pixels", t)][d] == ref[t][d]).all(axis=1).sum())
    print(
        f"criteria disagree on {differ} cases: 'area' matches cv2 on {area_right}, "
        f"'pixels' on {pixels_right}"
    )
    out.update(criteria_differ=differ, area_right=area_right, pixels_right=pixels_right)
    out["agreement"] = out["agreement_area"]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
