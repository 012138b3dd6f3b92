"""Whole-image localization check: Loc boxes and maps that cover the image.

A localizer can score its classes with spatially flat maps; per-image min-max
normalization then stretches noise to [0, 1], most pixels pass the CAM
threshold and every box is the whole image (e.g. SLT-Net's localizer when its
visual-stimulus tolerance loss, Guo et al., CVPR 2022, Eq. 13, outweighs the
classification loss: a constant map is invariant to every flip and zoom).
Box metrics then still look plausible (IoU of the full image with large
objects), so the evaluation records the coverage and flags the collapse
instead of publishing whole-image boxes silently.

Criterion: at least ``COLLAPSE_FRACTION`` of the images get a Loc box covering
``>= FULL_BOX_AREA`` of the image while fewer than that fraction of their
ground-truth boxes do (objects that really fill the frame are not a collapse).
"""

import numpy as np

FULL_BOX_AREA = 0.9
COLLAPSE_FRACTION = 0.5


def box_area_fraction(box, shape):
    """Inclusive-pixel area of xyxy ``box`` over the ``(H, W)`` image area."""
    x0, y0, x1, y1 = (float(v) for v in box)
    h, w = shape
    return max(0.0, x1 - x0 + 1.0) * max(0.0, y1 - y0 + 1.0) / float(h * w)


class CoverageCheck:
    """Accumulates Loc box areas, GT box areas and map coverage per image.

    Args:
        threshold: the Loc CAM threshold (map coverage = fraction of pixels
            ``>= threshold``).
    """

    def __init__(self, threshold):
        self.threshold = float(threshold)
        self.box_areas, self.gt_areas, self.map_cover = [], [], []

    def update(self, scoremap, box, gt_boxes):
        """One image: its [H, W] map in [0, 1], Loc box and [n, 4] GT boxes."""
        shape = scoremap.shape
        self.box_areas.append(box_area_fraction(box, shape))
        self.gt_areas.append(max(box_area_fraction(g, shape) for g in gt_boxes))
        self.map_cover.append(float(np.mean(scoremap >= self.threshold)))

    def result(self):
        """Percentages, ``localization_collapsed`` and, if so, a warning."""
        if not self.box_areas:
            return {}
        full = float(np.mean(np.asarray(self.box_areas) >= FULL_BOX_AREA))
        gt_full = float(np.mean(np.asarray(self.gt_areas) >= FULL_BOX_AREA))
        out = {
            "loc_box_area_mean": 100.0 * float(np.mean(self.box_areas)),
            "loc_box_full_image": 100.0 * full,
            "gt_box_area_mean": 100.0 * float(np.mean(self.gt_areas)),
            "map_coverage_mean": 100.0 * float(np.mean(self.map_cover)),
            "localization_collapsed": bool(
                full >= COLLAPSE_FRACTION and gt_full < COLLAPSE_FRACTION
            ),
        }
        if out["localization_collapsed"]:
            out["localization_warning"] = (
                f"{out['loc_box_full_image']:.0f}% of the Loc boxes cover >= "
                f"{FULL_BOX_AREA:.0%} of the image (ground truth: "
                f"{100.0 * gt_full:.0f}%); the maps cover "
                f"{out['map_coverage_mean']:.0f}% of the pixels at threshold "
                f"{self.threshold:.3f}: the localizer does not localize, the "
                "Loc metrics score whole-image boxes"
            )
        return out
