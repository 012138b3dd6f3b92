"""How much of an object mask a localization map covers, and how much it spills.

The box metrics (`wsol_keras.evaluation.metrics`) say whether a map's box fits
the object; these figures say why, on data with pixel masks (the synthetic
benchmark, OpenImages-style data):

* the map's *region* R = {map >= threshold} (a map min-max normalized to
  [0, 1]) against the object mask O: ``object_covered`` = |R n O| / |O|,
  ``outside_object`` = |R \\ O| / |R|, ``region_area`` = |R| / (H W);
* the map's *mass* inside O (SPN's Object Energy, Zhu et al., "Soft Proposal
  Networks for Weakly Supervised Object Localization", ICCV 2017, Sec. 4.1,
  on the mask instead of the box): sum(max(map, 0) over O) / sum(max(map, 0)),
  to compare with ``object_area`` = |O| / (H W), the energy of a uniform map;
* the overlap of two regions (`region_overlap`): the share of one inside the
  other and their IoU (ACoL's classifier B against the region erased from A,
  Zhang et al., "Adversarial Complementary Learning for Weakly Supervised
  Object Localization", CVPR 2018, Sec. 3.1).

Figures undefined for an image (an empty mask or region, a map without
positive mass) are left out of that figure's mean, and counted.
"""

import numpy as np


def _batch(x, name):
    x = np.asarray(x)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3:
        raise ValueError(f"{name}: expected [B, H, W] or [H, W], got shape {x.shape}")
    return x


def _ratio(num, den):
    """num / den per image, NaN where den == 0."""
    num = np.asarray(num, np.float64)
    den = np.asarray(den, np.float64)
    out = np.full(num.shape, np.nan)
    ok = den > 0
    out[ok] = num[ok] / den[ok]
    return out


def region_coverage(maps, masks, threshold):
    """Per-image region figures of maps in [0, 1] against object masks.

    Args:
        maps: [B, H, W] (or [H, W]) normalized maps.
        masks: [B, H, W] object masks (nonzero = object), the maps' size.
        threshold: the region is ``maps >= threshold``.

    Returns:
        dict of float64 [B] arrays: ``object_covered`` (|R n O| / |O|, NaN
        for an empty mask), ``outside_object`` (|R \\ O| / |R|, NaN for an
        empty region), ``region_area`` (|R| / (H W)), ``object_area``
        (|O| / (H W)).
    """
    maps, masks = _batch(maps, "maps"), _batch(masks, "masks") != 0
    if maps.shape != masks.shape:
        raise ValueError(f"maps {maps.shape} and masks {masks.shape} differ in shape")
    region = maps >= float(threshold)
    axes = (1, 2)
    pixels = float(maps.shape[1] * maps.shape[2])
    inside = np.sum(region & masks, axis=axes)
    return {
        "object_covered": _ratio(inside, np.sum(masks, axis=axes)),
        "outside_object": _ratio(np.sum(region & ~masks, axis=axes), np.sum(region, axis=axes)),
        "region_area": np.sum(region, axis=axes) / pixels,
        "object_area": np.sum(masks, axis=axes) / pixels,
    }


def mass_inside(maps, masks):
    """Per-image share of a map's positive mass inside the mask (Object Energy).

    Args:
        maps: [B, H, W] (or [H, W]) maps at the masks' size, any scale;
            negative values count as 0 (SPN Sec. 4.1 clips them).
        masks: [B, H, W] object masks (nonzero = object).

    Returns:
        float64 [B]: sum of max(map, 0) over the mask / its sum over the image;
        NaN for a map with no positive value.
    """
    maps, masks = _batch(maps, "maps"), _batch(masks, "masks") != 0
    if maps.shape != masks.shape:
        raise ValueError(f"maps {maps.shape} and masks {masks.shape} differ in shape")
    energy = np.maximum(maps.astype(np.float64), 0.0)
    return _ratio(np.sum(energy * masks, axis=(1, 2)), np.sum(energy, axis=(1, 2)))


def region_overlap(regions, others):
    """Per-image overlap of boolean regions with other regions.

    Args:
        regions: [B, H, W] (or [H, W]) bool, e.g. classifier B's region.
        others: the same shape, e.g. the region erased from classifier A.

    Returns:
        dict of float64 [B]: ``inside`` = |R n Q| / |R| (NaN for an empty R),
        ``iou`` = |R n Q| / |R u Q| (NaN when both are empty).
    """
    r, q = _batch(regions, "regions") != 0, _batch(others, "others") != 0
    if r.shape != q.shape:
        raise ValueError(f"regions {r.shape} and others {q.shape} differ in shape")
    both = np.sum(r & q, axis=(1, 2))
    return {
        "inside": _ratio(both, np.sum(r, axis=(1, 2))),
        "iou": _ratio(both, np.sum(r | q, axis=(1, 2))),
    }


class MaskCoverage:
    """Accumulates `region_coverage` and `mass_inside` over batches.

    Args:
        threshold: the region threshold of the normalized maps.
    """

    def __init__(self, threshold):
        self.threshold = float(threshold)
        self.rows = {}

    def update(self, maps, masks, energy_maps=None):
        """One batch: normalized maps, masks and (optional) the maps whose mass
        `mass_inside` measures (default: `maps`), all at the masks' size."""
        figures = region_coverage(maps, masks, self.threshold)
        figures["mass_inside"] = mass_inside(maps if energy_maps is None else energy_maps, masks)
        for k, v in figures.items():
            self.rows.setdefault(k, []).append(v)

    def result(self):
        """Means in percent over the images where each figure is defined, the
        image count and, per figure, the images left out (``undefined``)."""
        if not self.rows:
            raise ValueError("MaskCoverage.result() called before any update")
        out = {}
        undefined = {}
        for k, parts in self.rows.items():
            v = np.concatenate(parts)
            ok = np.isfinite(v)
            out[k] = 100.0 * float(np.mean(v[ok])) if ok.any() else float("nan")
            if (~ok).any():
                undefined[k] = int(np.sum(~ok))
        out["num_images"] = int(sum(len(p) for p in self.rows["region_area"]))
        out["threshold"] = self.threshold
        if undefined:
            out["undefined"] = undefined
        return out
