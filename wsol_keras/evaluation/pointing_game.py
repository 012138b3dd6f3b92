"""The pointing game as SPN defines it (Zhu et al., "Soft Proposal Networks for
Weakly Supervised Object Localization", ICCV 2017, Sec. 4.2; the protocol of
Zhang et al., "Top-down Neural Attention by Excitation Backprop"): the
per-class mean of hits / (hits + misses), the tolerance in original-image
pixels. Exposed as `wsol_keras.evaluation.metrics.PointingGame` with the other streaming
metrics.
"""

import numpy as np

from wsol_keras.evaluation import metric_inputs as _in
class PointingGame:
    """Pointing game (SPN Sec. 4.2, the protocol of Zhang et al., "Top-down Neural
    Attention by Excitation Backprop"): a hit when the pixel of maximum response
    lies inside a GT box of the cued class or within ``tolerance`` pixels of it
    (Euclidean distance to the box), measured in *original-image* pixels; accuracy
    Hits / (Hits + Misses) per class, and the result is the mean over classes.

    The maps and boxes are at the network's resolution (H x W); with
    ``original_sizes`` each image's distances are scaled by (orig_h / H,
    orig_w / W) before the tolerance is applied, as if the map had been
    upsampled to the image. Without them the tolerance is in map pixels, and
    the result says so.

    Args:
        tolerance: pixels, default 15 (SPN's value for pointing without prediction).
    """

    def __init__(self, tolerance=15):
        if not np.isfinite(tolerance) or tolerance < 0:
            raise ValueError(f"tolerance must be finite and >= 0, got {tolerance}")
        self.tolerance = float(tolerance)
        self.reset()

    def reset(self):
        self.hits = {}
        self.counts = {}
        self.units = None

    def update(self, scoremaps, gt_boxes, class_ids=None, original_sizes=None):
        """Accumulates a batch.

        Args:
            scoremaps: [B, H, W] maps of the cued class.
            gt_boxes: B entries, each [n_i, 4] xyxy in the map's pixels.
            class_ids: [B] cued class of each map (None: all one class, so the
                result is the overall rate).
            original_sizes: [B, 2] (height, width) of each image before it was
                resized to H x W; None measures the tolerance in map pixels.
        """
        maps = _in.as_maps(scoremaps)
        _in.check_len("gt_boxes", gt_boxes, len(maps))
        cls = (
            np.zeros(len(maps), np.int64)
            if class_ids is None
            else np.asarray(class_ids).reshape(-1)
        )
        _in.check_len("class_ids", cls, len(maps))
        units = "map pixels" if original_sizes is None else "original-image pixels"
        if self.units not in (None, units):
            raise ValueError(
                f"PointingGame: this batch measures the tolerance in {units}, earlier "
                f"ones in {self.units}; pass original_sizes for every batch or none"
            )
        if original_sizes is None:
            scale = np.ones((len(maps), 2))
        else:
            sizes = np.asarray(original_sizes, np.float64).reshape(-1, 2)
            _in.check_len("original_sizes", sizes, len(maps))
            bad = ~np.isfinite(sizes).all(axis=1) | (sizes <= 0).any(axis=1)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise ValueError(
                    f"original_sizes[{i}] must be a positive (height, width), "
                    f"got {sizes[i].tolist()}"
                )
            scale = sizes / np.asarray(maps.shape[1:], np.float64)  # (sy, sx)
        self.units = units
        for i, (m, g) in enumerate(zip(maps, gt_boxes)):
            g = _in.clean_gt(g, i, m.shape)
            flat = np.nan_to_num(m, nan=-np.inf).ravel()
            y, x = np.unravel_index(int(np.argmax(flat)), m.shape)
            dx = np.maximum.reduce([g[:, 0] - x, np.zeros(len(g)), x - g[:, 2]])
            dy = np.maximum.reduce([g[:, 1] - y, np.zeros(len(g)), y - g[:, 3]])
            dist = np.hypot(dx * scale[i, 1], dy * scale[i, 0])
            hit = bool((dist <= self.tolerance).any())
            c = int(cls[i])
            self.hits[c] = self.hits.get(c, 0) + hit
            self.counts[c] = self.counts.get(c, 0) + 1

    def result(self):
        """``pointing_game`` (mean of per-class accuracies, percent),
        ``pointing_game_overall`` (all images pooled), the tolerance and its unit,
        and the number of classes averaged."""
        if not self.counts:
            raise ValueError("PointingGame.result() called before any update")
        per_class = [self.hits[c] / self.counts[c] for c in sorted(self.counts)]
        overall = sum(self.hits.values()) / sum(self.counts.values())
        return {
            "pointing_game": 100.0 * float(np.mean(per_class)),
            "pointing_game_overall": 100.0 * overall,
            "pointing_tolerance": self.tolerance,
            "pointing_tolerance_unit": self.units,
            "pointing_num_classes": len(per_class),
        }
