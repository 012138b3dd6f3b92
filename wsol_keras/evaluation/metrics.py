"""Streaming localization metrics (numpy in, percent out), matching the field's definitions.

Every metric keeps constant-size state (counts / histograms), so memory does not
grow with the number of images: ``update(...)`` per batch, ``result()`` at the end,
``reset()`` to start over, like a Keras metric.

References:
  * MaxBoxAcc / MaxBoxAccV2 and PxAP: Choe et al., "Evaluating Weakly Supervised
    Object Localization Methods Right", CVPR 2020, Sec. 4 (box accuracy at the best
    CAM threshold; V2 averages IoU 30/50/70 and uses all contours; PxAP is the area
    under the pixel precision-recall curve), code clovaai/wsolevaluation
    ``BoxEvaluator`` / ``MaskEvaluator`` (``evaluation.py``).
  * Top-1 / Top-5 / GT-known Loc: the CAM paper as revisited in ACoL Sec. 4
    (IoU >= 0.5 with a ground-truth box, with the class correct).
  * Pointing game and CorLoc: SPN (Zhu et al., CVPR 2017) Sec. 4.2 (hit if the
    maximum falls within 15 px of a GT box of the class, in original-image
    pixels as in Zhang et al.'s protocol; mean of per-class accuracy) and Sec. 4.3 (CorLoc: fraction of images with IoU >= 0.5, per
    class, averaged over classes).
"""

import numpy as np

from wsol_keras.localization import boxes as _boxes
from wsol_keras.evaluation import metric_inputs as _in
from wsol_keras.evaluation.pointing_game import PointingGame

__all__ = [
    "BoxAccuracy",
    "PxAP",
    "LocalizationAccuracy",
    "PointingGame",
    "CorLoc",
    "top_k_correct",
    "default_cam_thresholds",
]


def default_cam_thresholds(interval=0.001):
    """wsolevaluation's CAM threshold list ``np.arange(0, 1, interval)``."""
    return np.arange(0, 1, interval)


def top_k_correct(logits, labels, k):
    """Whether each label is among the ``k`` highest logits.

    Args:
        logits: [B, C] scores.
        labels: [B] int class ids.
        k: int.

    Returns:
        bool [B]. Ties are broken towards the lower class index (``np.argsort``
        stable on the negated scores), the usual top-k convention.
    """
    logits = np.asarray(logits)
    labels = np.asarray(labels).reshape(-1)
    if logits.ndim != 2 or len(logits) != len(labels):
        raise ValueError(
            f"logits must be [B, C] with B = len(labels); got {logits.shape} and {labels.shape}"
        )
    if (labels < 0).any() or (labels >= logits.shape[1]).any():
        raise ValueError(
            f"labels must be in [0, {logits.shape[1]}), got {labels.tolist()}"
        )
    topk = np.argsort(-logits, axis=1, kind="stable")[:, :k]
    return (topk == labels[:, None]).any(axis=1)


class BoxAccuracy:
    """MaxBoxAcc (``multi_contour=False``, IoU 50) and MaxBoxAccV2 (defaults).

    For every CAM threshold t and IoU level d, counts the images whose estimated
    box(es) at t reach IoU >= d/100 with at least one GT box; the result is the
    best accuracy over t per IoU level (Choe et al. CVPR 2020, Sec. 4.1; reference
    ``BoxEvaluator.accumulate``/``compute``). Boxes come from
    :func:`wsol_keras.localization.boxes.level_boxes` (identical to the reference, much faster).

    Args:
        cam_thresholds: CAM thresholds; default ``np.arange(0, 1, 0.001)``
            (wsolevaluation's ``cam_curve_interval=0.001``).
        iou_thresholds: IoU levels in percent.
        multi_contour: every contour (V2) or the largest one (V1).
    """

    def __init__(
        self, cam_thresholds=None, iou_thresholds=(30, 50, 70), multi_contour=True
    ):
        if cam_thresholds is None:
            cam_thresholds = default_cam_thresholds()
        self.cam_thresholds = _in.check_cam_thresholds(cam_thresholds)
        self.iou_thresholds = _in.check_iou_percents(iou_thresholds)
        self.multi_contour = bool(multi_contour)
        self.reset()

    def reset(self):
        self.num_images = 0
        self.num_correct = {
            d: np.zeros(len(self.cam_thresholds), np.int64) for d in self.iou_thresholds
        }

    def max_iou_per_threshold(self, scoremap, gt_boxes, quantized=None, shared=None):
        """Best IoU over estimated boxes x GT boxes at every CAM threshold, [T].

        `quantized` (the uint8 map, `quantize_scoremaps`) and `shared` (a
        per-map dict, see `wsol_keras.localization.boxes.quantized_level_boxes`)
        let a caller quantize a batch once and share the rule-independent work
        between MaxBoxAcc and MaxBoxAccV2; the boxes are the same.
        """
        if quantized is None:
            quantized = _boxes.quantize_scoremap(scoremap)
        levels, box_level, boxes = _boxes.quantized_level_boxes(
            quantized, self.cam_thresholds, self.multi_contour, shared
        )
        best = _boxes.iou_xyxy(boxes, gt_boxes).max(axis=1)
        # box_level is sorted: each level's boxes are one contiguous run
        start = np.concatenate([[0], np.flatnonzero(np.diff(box_level)) + 1])
        uniq = box_level[start]
        per_level = np.maximum.reduceat(best, start)
        return per_level[np.searchsorted(uniq, levels)]

    def update(self, scoremaps, gt_boxes, quantized=None, shared=None):
        """Accumulates a batch.

        Args:
            scoremaps: [B, H, W] float maps in [0, 1] (see ``normalize_scoremap``).
            gt_boxes: B entries, each [n_i, 4] xyxy in the map's pixels (rows of -1
                are padding and ignored).
            quantized: optional uint8 [B, H, W] ``quantize_scoremaps(scoremaps)``
                (computed here when None: the whole batch at once).
            shared: optional list of B dicts, one per map, reused by another
                `BoxAccuracy` updated with the same maps and thresholds.
        """
        maps = _in.as_maps(scoremaps)
        _in.check_len("gt_boxes", gt_boxes, len(maps))
        if quantized is None:
            quantized = _boxes.quantize_scoremaps(maps)
        if shared is None:
            shared = [None] * len(maps)
        hits = np.stack(
            [
                self.max_iou_per_threshold(
                    m, _in.clean_gt(g, i, m.shape), quantized[i], shared[i]
                )
                for i, (m, g) in enumerate(zip(maps, gt_boxes))
            ]
        ) if len(maps) else np.zeros((0, len(self.cam_thresholds)))
        for d in self.iou_thresholds:
            self.num_correct[d] += (hits >= d / 100).sum(axis=0)
        self.num_images += len(maps)

    def curves(self):
        """Box accuracy (percent) against CAM threshold: {iou level: array [T]}."""
        if self.num_images == 0:
            raise ValueError("BoxAccuracy.curves() called before any update()")
        return {
            d: self.num_correct[d] * 100.0 / self.num_images
            for d in self.iou_thresholds
        }

    def result(self):
        """Dict: ``max_box_acc_iou{d}``, ``best_threshold_iou{d}`` per level,
        ``max_box_acc`` (mean over levels), ``num_images``. Percent."""
        out = {}
        accs = []
        for d, curve in self.curves().items():
            j = int(np.argmax(curve))
            out[f"max_box_acc_iou{d}"] = float(curve[j])
            out[f"best_threshold_iou{d}"] = float(self.cam_thresholds[j])
            accs.append(curve[j])
        out["max_box_acc"] = float(np.mean(accs))
        out["num_images"] = self.num_images
        return out


class PxAP:
    """Pixel average precision (area under the pixel precision-recall curve).

    Histogram-based as wsolevaluation ``MaskEvaluator``: scores of foreground
    (mask 1) and background (mask 0) pixels are binned at the CAM thresholds
    (right edges ``thresholds + [1, 2, 3]``; mask 255 is ignored), precision and
    recall follow from the reversed cumulative histograms and
    ``AP = sum(precision[1:] * diff(recall))`` over thresholds with predictions
    (Choe et al. CVPR 2020, Sec. 4.2).

    Args:
        cam_thresholds: increasing, starting at 0; default ``np.arange(0, 1, 0.001)``.
    """

    def __init__(self, cam_thresholds=None):
        if cam_thresholds is None:
            cam_thresholds = default_cam_thresholds()
        self.cam_thresholds = _in.check_cam_thresholds(cam_thresholds)
        if (np.diff(self.cam_thresholds) <= 0).any():
            raise ValueError("cam_thresholds must be a non-empty increasing sequence")
        # The lowest bin must catch every score: starting above 0 drops the
        # low-scoring pixels from both histograms and inflates AP (100.0 where
        # the full curve gives 62.5).
        if self.cam_thresholds[0] != 0:
            raise ValueError(
                f"PxAP cam_thresholds must start at 0, got {self.cam_thresholds[0]}"
            )
        self.edges = np.append(self.cam_thresholds, [1.0, 2.0, 3.0])
        self.reset()

    def reset(self):
        nb = len(self.cam_thresholds) + 2
        self.gt_true_hist = np.zeros(nb, np.float64)
        self.gt_false_hist = np.zeros(nb, np.float64)
        self.num_images = 0

    def update(self, scoremaps, masks):
        """Args: scoremaps [B, H, W] in [0, 1]; masks [B, H, W] uint8, 1 fg / 0 bg / 255 ignore."""
        maps = _in.as_maps(scoremaps)
        masks = np.asarray(masks)
        if masks.ndim == 2:
            masks = masks[None]
        if masks.shape != maps.shape:
            raise ValueError(
                f"masks shape {masks.shape} != scoremaps shape {maps.shape}"
            )
        bad = ~np.isin(masks, (0, 1, 255))
        if bad.any():
            raise ValueError(
                f"masks must hold only 0, 1 or 255; found {np.unique(masks[bad]).tolist()}"
            )
        for i, (m, k) in enumerate(zip(maps, masks)):
            if np.isnan(m).any() or (m < 0).any() or (m > 1).any():
                raise ValueError(f"scoremaps[{i}] must be in [0, 1] without NaN")
            self.gt_true_hist += np.histogram(m[k == 1], bins=self.edges)[0]
            self.gt_false_hist += np.histogram(m[k == 0], bins=self.edges)[0]
            self.num_images += 1

    def precision_recall(self):
        """(precision, recall, valid) arrays, from high to low threshold."""
        tp = self.gt_true_hist[::-1].cumsum()
        fn = self.gt_true_hist.sum() - tp
        fp = self.gt_false_hist[::-1].cumsum()
        if ((tp + fn) <= 0).all():
            raise ValueError(
                "PxAP: no foreground (mask == 1) pixel in the evaluated set"
            )
        if ((tp + fp) <= 0).all():
            raise ValueError("PxAP: no pixel scored above any threshold")
        valid = (tp + fp) != 0
        with np.errstate(invalid="ignore", divide="ignore"):
            precision = tp / (tp + fp)
        recall = tp / (tp + fn)
        return precision, recall, valid

    def result(self):
        precision, recall, valid = self.precision_recall()
        auc = (precision[1:] * np.diff(recall))[valid[1:]].sum() * 100
        return {"pxap": float(auc)}


class LocalizationAccuracy:
    """Top-1 Loc, Top-5 Loc and GT-known Loc at one CAM threshold.

    A box hits when its IoU with any GT box of the image is >= ``iou_threshold``
    (box from the largest contour of the GT class's map, as wsolevaluation).
    Top-1 Loc also needs the top-1 class right, Top-5 Loc the GT class in the top 5
    (then the GT class's map is the predicted class's map).

    Args:
        cam_threshold: float CAM threshold in [0, 1] for ``update``.
        iou_threshold: IoU fraction, default 0.5.
        multi_contour: use the best of all contours instead of the largest.
    """

    def __init__(self, cam_threshold=0.2, iou_threshold=0.5, multi_contour=False):
        if not 0 < iou_threshold <= 1:
            raise ValueError(
                f"iou_threshold is a fraction in (0, 1], got {iou_threshold}"
            )
        self.cam_threshold = float(cam_threshold)
        self.iou_threshold = float(iou_threshold)
        self.multi_contour = bool(multi_contour)
        self.reset()

    def reset(self):
        self.num_images = 0
        self.top1 = self.top5 = self.gt_known = 0

    def _accumulate(self, hit, top1_correct, top5_correct):
        hit = np.asarray(hit, bool)
        t1 = np.asarray(top1_correct, bool).reshape(-1)
        t5 = np.asarray(top5_correct, bool).reshape(-1)
        if not len(t1) == len(t5) == len(hit):
            raise ValueError(
                f"top1_correct ({len(t1)}), top5_correct ({len(t5)}) and maps ({len(hit)}) differ in length"
            )
        self.gt_known += int(hit.sum())
        self.top1 += int((hit & t1).sum())
        self.top5 += int((hit & t5).sum())
        self.num_images += len(hit)

    def update(self, scoremaps, gt_boxes, top1_correct, top5_correct):
        """Args: scoremaps [B, H, W] of the GT class in [0, 1]; gt_boxes B x [n_i, 4];
        top1_correct, top5_correct: bool [B]."""
        maps = _in.as_maps(scoremaps)
        _in.check_len("gt_boxes", gt_boxes, len(maps))
        hits = []
        for i, (m, g) in enumerate(zip(maps, gt_boxes)):
            pred, _ = _boxes.boxes_from_scoremap(
                m, [self.cam_threshold], self.multi_contour
            )
            hits.append(
                _boxes.iou_xyxy(pred[0], _in.clean_gt(g, i, m.shape)).max()
                >= self.iou_threshold
            )
        self._accumulate(hits, top1_correct, top5_correct)

    def update_boxes(
        self, pred_boxes, gt_boxes, top1_correct, top5_correct, image_shape=None
    ):
        """For models that regress boxes: pred_boxes [B, 4] absolute xyxy pixels;
        image_shape: (H, W) the boxes live in, to reject GT boxes beyond it."""
        pred = np.asarray(pred_boxes, dtype=np.float64).reshape(-1, 4)
        _in.check_len("gt_boxes", gt_boxes, len(pred))
        hits = [
            _boxes.iou_xyxy(p[None], _in.clean_gt(g, i, image_shape)).max()
            >= self.iou_threshold
            for i, (p, g) in enumerate(zip(pred, gt_boxes))
        ]
        self._accumulate(hits, top1_correct, top5_correct)

    def result(self):
        if self.num_images == 0:
            raise ValueError("LocalizationAccuracy.result() called before any update")
        n = self.num_images
        return {
            "top1_loc": 100.0 * self.top1 / n,
            "top5_loc": 100.0 * self.top5 / n,
            "gt_known_loc": 100.0 * self.gt_known / n,
        }


class CorLoc:
    """Correct localization (SPN Sec. 4.3, after Deselaers et al.): per class, the
    percentage of images whose predicted box has IoU >= ``iou_threshold`` with a GT
    box; averaged over the classes that have images.

    Args:
        num_classes: number of classes.
        iou_threshold: IoU fraction, default 0.5.
    """

    def __init__(self, num_classes, iou_threshold=0.5):
        if int(num_classes) < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = int(num_classes)
        self.iou_threshold = float(iou_threshold)
        self.reset()

    def reset(self):
        self.hits = np.zeros(self.num_classes, np.int64)
        self.counts = np.zeros(self.num_classes, np.int64)

    def update(self, pred_boxes, gt_boxes, class_ids, image_shape=None):
        """Args: pred_boxes [B, 4] xyxy pixels; gt_boxes B x [n_i, 4]; class_ids [B];
        image_shape: (H, W) the boxes live in, to reject GT boxes beyond it."""
        pred = np.asarray(pred_boxes, dtype=np.float64).reshape(-1, 4)
        cls = np.asarray(class_ids).reshape(-1)
        _in.check_len("gt_boxes", gt_boxes, len(pred))
        _in.check_len("class_ids", cls, len(pred))
        if (cls < 0).any() or (cls >= self.num_classes).any():
            raise ValueError(
                f"class_ids must be in [0, {self.num_classes}), got {cls.tolist()}"
            )
        for i, (p, g, c) in enumerate(zip(pred, gt_boxes, cls)):
            self.hits[c] += (
                _boxes.iou_xyxy(p[None], _in.clean_gt(g, i, image_shape)).max()
                >= self.iou_threshold
            )
            self.counts[c] += 1

    def result(self):
        seen = self.counts > 0
        if not seen.any():
            raise ValueError("CorLoc.result() called before any update")
        per_class = self.hits[seen] / self.counts[seen]
        return {"corloc": 100.0 * float(per_class.mean())}
