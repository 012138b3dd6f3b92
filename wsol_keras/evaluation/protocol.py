"""The papers' test protocols as `wsol-eval` options (``config.eval``).

wsolevaluation's protocol (Choe et al., "Evaluating Weakly Supervised Object
Localization Methods Right", CVPR 2020) is the default; the papers' own
protocols are options their configs switch on:

* ``eval.image_size_mode``: ``"fixed"`` scores maps and boxes at S x S
  (``data.image_size``), with the ground-truth boxes truncated to integers
  after the resize as wsolevaluation's ``resize_bbox`` does (``int(x * S /
  w)``); ``"original"`` resizes each raw map to its image's original size and
  scores boxes in original pixels, as ACoL (Sec. 3.3: maps resized "to the same
  size with the original images by linear interpolation"), DANet
  (utils/localization.py: ``cv2.resize(cam, (w, h))``), DGL (Sec. 4.1) and SPN
  (Sec. 4.3) do. The original boxes are the element's S x S boxes scaled back
  (`original_boxes`); PxAP stays at S x S (masks come at that size) and the
  pointing game already measures its tolerance in original pixels.
* ``eval.box_method``: the box of Top-1/Top-5/GT-known Loc and CorLoc:
  ``"largest_contour"`` (wsolevaluation / the CAM paper), ``"spn"`` (SPN Sec.
  4.3: the map thresholded at its mean, the tightest box over all foreground
  pixels; `wsol_keras.evaluation.multilabel_metrics.spn_box`) or ``"danet_union"``
  (DANet utils/localization.py ``mode='union'``: the tightest box over all
  pixels >= the threshold, chosen on val among DANet's sweep 0.05..0.30 and
  reported per threshold). MaxBoxAcc / MaxBoxAccV2 keep wsolevaluation's box.
* ``eval.ten_crop``: classification scores are the mean softmax over the ten
  crops (4 corners, center, and their mirrors; torchvision ``TenCrop``) of the
  original image resized to ``eval.ten_crop_resize`` (ACoL, DANet, DGL,
  SLT-Net Sec. 4.1; DANet utils/loader.py ``Resize((256, 256))`` +
  ``TenCrop(224)``); the maps come from the single S x S image (DGL Sec. 4.2:
  10 crops and the 224 resize give "classification results and localization
  maps respectively"; SLT-Net Sec. 4.1), or with ``eval.ten_crop_maps=
  "average"`` the crops' maps pasted back and averaged.
* Object Energy (SPN Sec. 4.1) is always reported: the share of a map's energy
  inside the ground-truth boxes, of SPN's proposal map when the model has one,
  else of the localization map.
"""

import cv2
import numpy as np
import tensorflow as tf

from wsol_keras.localization import boxes as boxes_lib
from wsol_keras.evaluation import coverage as coverage_lib
from wsol_keras.evaluation import metrics as metrics_lib
from wsol_keras.evaluation import multilabel_metrics
from wsol_keras.evaluation import paper_protocols
from wsol_keras.data import loaders as data_loaders
from wsol_keras.data import pipeline as data_pipeline
from wsol_keras.data import train_loader as data_train_loader
from wsol_keras.localization.maps import MAP_METHODS

BOX_METHODS = ("largest_contour", "spn", "danet_union")
IMAGE_SIZE_MODES = ("fixed", "original")
# Float32 box scaling leaves an exact integer up to ~1e-4 below it (boxes of
# images under 10k pixels); a true value k - m / w is at least 1e-4 below k.
_INT_EPS = 1e-4


# The configs' defaults (configs/base.py); workdirs written before these fields
# existed read them from here.
DEFAULTS = {
    "box_method": "largest_contour",
    "image_size_mode": "fixed",
    "ten_crop": False,
    "ten_crop_resize": None,
    "ten_crop_maps": "single",
}
TEN_CROP_MAPS = ("single", "average")


def option(config, name):
    """``config.eval.<name>`` of a protocol field, its default when absent."""
    return config.eval.get(name, DEFAULTS[name])


def check_config(config):
    """Raises ValueError naming the ``config.eval`` field that is invalid."""
    box, mode = option(config, "box_method"), option(config, "image_size_mode")
    method = config.eval.get("map_method", "cam")
    if method not in MAP_METHODS:
        raise ValueError(
            f"config.eval.map_method={method!r}: expected one of {', '.join(MAP_METHODS)}"
        )
    if box not in BOX_METHODS:
        raise ValueError(f"config.eval.box_method={box!r}: expected one of {BOX_METHODS}")
    if mode not in IMAGE_SIZE_MODES:
        raise ValueError(
            f"config.eval.image_size_mode={mode!r}: expected one of {IMAGE_SIZE_MODES}"
        )
    if option(config, "ten_crop_maps") not in TEN_CROP_MAPS:
        raise ValueError(
            f"config.eval.ten_crop_maps={option(config, 'ten_crop_maps')!r}: "
            f"expected one of {TEN_CROP_MAPS}"
        )
    if (
        option(config, "ten_crop_maps") == "average"
        and config.data.get("resize_mode", "square") == "shorter_side"
    ):
        raise ValueError(
            "config.eval.ten_crop_maps='average' needs data.resize_mode='square' "
            "(crop maps are pasted back onto the square resize)"
        )
    if option(config, "ten_crop") and ten_crop_resize(config) < int(config.data.image_size):
        raise ValueError(
            f"config.eval.ten_crop_resize={ten_crop_resize(config)} is smaller than "
            f"the crop (config.data.image_size={config.data.image_size})"
        )


def ten_crop_resize(config):
    """``eval.ten_crop_resize``, or S * 256 / 224 rounded (256 for 224)."""
    value = option(config, "ten_crop_resize")
    size = int(config.data.image_size)
    return int(value) if value is not None else int(round(size * 256 / 224))


def describe(config):
    """The protocol fields of an evaluation record."""
    ten_crop = bool(option(config, "ten_crop"))
    return {
        "box_method": option(config, "box_method"),
        "image_size_mode": option(config, "image_size_mode"),
        "ten_crop": ten_crop,
        "ten_crop_resize": ten_crop_resize(config) if ten_crop else None,
        "ten_crop_maps": option(config, "ten_crop_maps") if ten_crop else None,
    }


# -- ground-truth boxes ----------------------------------------------------------


def truncate_boxes(boxes):
    """wsolevaluation's ``resize_bbox``: resized boxes truncated to integers."""
    return np.floor(np.asarray(boxes, np.float64) + _INT_EPS)


def original_boxes(boxes, image_size, original_size):
    """S x S element boxes -> the original image's pixels (inverse of
    `wsol_keras.data.loaders.scale_boxes`: x * w / S, y * h / S in float64),
    snapped to the nearest integer when within 1e-3 of it (metadata boxes are
    integer pixels; the float32 round trip is off by less)."""
    h, w = (float(v) for v in original_size)
    s = float(image_size)
    out = np.asarray(boxes, np.float64).reshape(-1, 4) * [w / s, h / s, w / s, h / s]
    near = np.round(out)
    return np.where(np.abs(out - near) < 1e-3, near, out)


def resize_map(raw, height, width, upsample="cv2_bicubic"):
    """One raw map -> [height, width] in [0, 1] (cv2.resize, then min-max)."""
    shrink = height < raw.shape[0] or width < raw.shape[1]
    method = cv2.INTER_CUBIC if upsample == "cv2_bicubic" else cv2.INTER_LINEAR
    resized = cv2.resize(
        np.asarray(raw, np.float32),
        (int(width), int(height)),
        interpolation=cv2.INTER_AREA if shrink else method,
    )
    return boxes_lib.normalize_scoremap(resized)


class View:
    """One image as the box metrics score it: `scoremap` [H, W] in [0, 1],
    `gt` [n, 4] and `pred_box` (a regressor's, or None) in its pixels, and
    `energy` (the Object Energy map, any resolution)."""

    def __init__(self, scoremap, gt, energy, pred_box=None):
        self.scoremap, self.gt, self.energy, self.pred_box = scoremap, gt, energy, pred_box


def views(batch, results, rows, config):
    """The `View` of each row of `batch` with ``rows`` True (image_size_mode)."""
    size = int(config.data.image_size)
    original = option(config, "image_size_mode") == "original"
    upsample = config.eval.get("upsample", "cv2_bicubic")
    boxes = batch["boxes"].numpy()
    counts = batch["num_boxes"].numpy()
    sizes = batch["original_size"].numpy() if original else None
    out = []
    for i in np.flatnonzero(rows):
        gt = boxes[i, : counts[i]]
        energy = results["proposal"][i] if "proposal" in results else None
        pred = None
        if original:
            h, w = (int(v) for v in sizes[i])
            # score maps read from files have no raw map: resize the S x S one
            raw = results["raw_maps"][i] if "raw_maps" in results else results["maps"][i]
            scoremap = resize_map(raw, h, w, upsample)
            gt = original_boxes(gt, size, (h, w))
            if "boxes" in results:
                corner = np.array([w - 1, h - 1, w - 1, h - 1], np.float64)
                pred = np.clip(results["boxes"][i], 0.0, 1.0) * corner
        else:
            scoremap = results["maps"][i]
            gt = truncate_boxes(gt)
            if "boxes" in results:
                pred = np.clip(results["boxes"][i], 0.0, 1.0) * (size - 1)
        out.append(View(scoremap, gt, scoremap if energy is None else energy, pred))
    return out


def predicted_box(view, threshold, box_method):
    """xyxy box of the Loc metrics and CorLoc (a regressor's box wins)."""
    if view.pred_box is not None:
        return np.asarray(view.pred_box, np.float64)
    if box_method == "spn":
        return multilabel_metrics.spn_box(view.scoremap)
    if box_method == "danet_union":
        return np.asarray(paper_protocols.union_box(view.scoremap, threshold), np.float64)
    return np.asarray(boxes_lib.largest_contour_box(view.scoremap, threshold), np.float64)


def box_fn(config):
    """(S x S map, threshold) -> the Loc box of ``config.eval.box_method``
    (what the report's heat-map grid draws)."""
    method = option(config, "box_method")
    return lambda scoremap, threshold: predicted_box(
        View(scoremap, None, None), threshold, method
    )


def object_energy(view):
    """SPN Sec. 4.1 Object Energy of one view, in [0, 1]."""
    h, w = view.scoremap.shape
    return paper_protocols.object_energy(view.energy, view.gt, h, w)


# -- ten-crop --------------------------------------------------------------------


def _shorter_side_crops(source, split, size, crop):
    """Elements {"ten_crops": uint8 [10, crop, crop, 3], "image_id"} of a file
    source's `split`: the original with its shorter side resized to `size`
    (torchvision ``Resize(size)``, ACoL's release), cut by ``TenCrop(crop)``."""

    def load(path, label, boxes, num_boxes, mask_paths, ignore_path, image_id):
        big = data_train_loader.shorter_side_resize(data_loaders.decode_rgb(path), size)
        big = tf.cast(tf.clip_by_value(tf.round(big), 0, 255), tf.uint8)
        crops = tf.numpy_function(
            lambda im: paper_protocols.ten_crop(im, crop), [big], tf.uint8
        )
        return {"ten_crops": tf.ensure_shape(crops, [10, crop, crop, 3]), "image_id": image_id}

    ds = data_pipeline.records_dataset(source.validated_records(split)).map(
        load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    return ds if source.validates_images else ds.ignore_errors()


def _resized_images(source, split, size):
    """Elements {"image": [size, size, 3], "image_id"} of `split`, in order:
    the original image resized once for file sources (the same records as
    ``source.dataset``), the delivered S x S image resized otherwise (the
    synthetic source renders at S: that image is the original)."""
    if isinstance(source, data_pipeline.FileSource):
        rec = source.validated_records(split)
        load = data_loaders.make_loader(size, source.hierarchy, source.mask_threshold, False)
        ds = data_pipeline.records_dataset(rec).map(
            load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
        )
        if not source.validates_images:
            ds = ds.ignore_errors()
    else:
        ds = source.dataset(split).map(
            lambda e: dict(e, image=data_loaders.resize_image(e["image"], size))
        )
    return ds.map(lambda e: {"image": e["image"], "image_id": e["image_id"]})


def dataset(source, split, config):
    """``source.dataset(split)``, with "ten_crop_image" when ``eval.ten_crop``."""
    ds = source.dataset(split)
    if not option(config, "ten_crop"):
        return ds
    if getattr(source, "resize_mode", "square") == "shorter_side":
        crops = _shorter_side_crops(
            source, split, ten_crop_resize(config), int(config.data.image_size)
        )
        return tf.data.Dataset.zip((ds, crops)).map(
            lambda e, b: dict(e, ten_crops=b["ten_crops"], ten_crop_image_id=b["image_id"])
        )
    big = _resized_images(source, split, ten_crop_resize(config))
    return tf.data.Dataset.zip((ds, big)).map(
        lambda e, b: dict(e, ten_crop_image=b["image"], ten_crop_image_id=b["image_id"])
    )


def ten_crop_results(map_fn, single_fn, config):
    """Wraps a batch -> results function with ten-crop classification.

    "logits" become the log of the ten crops' mean softmax; the maps stay the
    single image's (`single_fn`), or with ``eval.ten_crop_maps="average"``
    "maps" / "raw_maps" become the crops' maps averaged where they cover the
    resized image (`paper_protocols.ten_crop_map_average`), resized to S x S /
    kept at the ten-crop size.

    Args:
        map_fn: (images, labels) -> {"logits", "maps", ...} tensors of a batch.
        single_fn: batch -> numpy results of the single S x S image.
        config: the evaluation config (``data.image_size``, ``eval.*``).
    """
    crop = int(config.data.image_size)
    chunk = max(10, int(config.eval.batch_size))
    average_maps = option(config, "ten_crop_maps") == "average"

    def fn(batch):
        ids, big_ids = batch["image_id"].numpy(), batch["ten_crop_image_id"].numpy()
        if not np.array_equal(ids, big_ids):
            bad = int(np.flatnonzero(ids != big_ids)[0])
            raise ValueError(
                f"ten-crop: batch position {bad}: image {ids[bad]!r} but its resized "
                f"copy is {big_ids[bad]!r} (the two datasets went out of step)"
            )
        if "ten_crops" in batch:  # cut in the input pipeline (shorter side)
            crops = batch["ten_crops"].numpy()
            images = crops[:, 0]
            crops = crops.reshape(-1, crop, crop, crops.shape[-1])
        else:
            images = batch["ten_crop_image"].numpy()
            crops = np.concatenate([paper_protocols.ten_crop(im, crop) for im in images])
        labels = np.repeat(batch["label"].numpy(), 10)
        parts = [
            map_fn(tf.constant(crops[i : i + chunk], tf.float32), tf.constant(labels[i : i + chunk]))
            for i in range(0, len(crops), chunk)
        ]
        logits = np.concatenate([p["logits"].numpy() for p in parts]).astype(np.float64)
        b = len(images)
        scores = np.stack([paper_protocols.ten_crop_scores(z) for z in logits.reshape(b, 10, -1)])
        if average_maps:
            maps = np.concatenate([p["maps"].numpy() for p in parts]).reshape(b, 10, crop, crop)
            side = images.shape[1]
            raw = np.stack([paper_protocols.ten_crop_map_average(m, side, side) for m in maps])
            results = {
                "raw_maps": raw.astype(np.float32),
                "maps": np.stack([resize_map(m, crop, crop) for m in raw]).astype(np.float32),
            }
        else:
            results = single_fn(batch)
        results["logits"] = np.log(np.maximum(scores, 1e-30)).astype(np.float32)
        return results

    return fn


# -- the box metrics over views ---------------------------------------------------


def cam_thresholds(config):
    """wsolevaluation's CAM threshold list ``np.arange(0, 1, interval)``."""
    return np.arange(0.0, 1.0, float(config.eval.cam_threshold_step))


def stacked_scoremaps(views_):
    """float [n, H, W] of the views' score maps when they share one shape
    (``image_size_mode="fixed"``), else None."""
    if not views_ or len({v.scoremap.shape for v in views_}) != 1:
        return None
    stack = np.stack([np.asarray(v.scoremap) for v in views_])
    return stack if np.issubdtype(stack.dtype, np.floating) else stack.astype(np.float64)


class BoxMetrics:
    """MaxBoxAcc (V1, V2), Loc, CorLoc, Object Energy (and DANet's union-box
    sweep) over the `View`s of an evaluation.

    Args:
        config: the evaluation's config (thresholds, IoU levels, box method).
        box_threshold: the threshold of the Loc / CorLoc box.
        num_classes: C, for CorLoc.
    """

    def __init__(self, config, box_threshold, num_classes):
        thresholds = cam_thresholds(config)
        self.iou_levels = tuple(int(i) for i in config.eval.iou_thresholds)
        self.box_method = option(config, "box_method")
        self.box_threshold = float(box_threshold)
        self.v1 = metrics_lib.BoxAccuracy(thresholds, (50,), multi_contour=False)
        self.v2 = metrics_lib.BoxAccuracy(thresholds, self.iou_levels, multi_contour=True)
        self.loc = metrics_lib.LocalizationAccuracy(cam_threshold=box_threshold)
        self.corloc = metrics_lib.CorLoc(num_classes=num_classes)
        self.sweep = paper_protocols.UnionBoxSweep()
        self.energy = []
        self.energy_map = None
        self.coverage = coverage_lib.CoverageCheck(box_threshold)

    def update(self, views_, top1_ok, top5_ok, class_ids):
        """Views of a batch's boxed rows with their bool [n] top-1/5 and int [n] classes.

        Maps of one shape (``image_size_mode="fixed"``) are scored as one stack:
        quantized once, the MaxBoxAcc and MaxBoxAccV2 passes sharing each map's
        component tree, the Loc and CorLoc boxes counted in one call. The counts
        are the per-image ones (`update_each`).
        """
        stack = stacked_scoremaps(views_)
        if stack is None:
            self.update_each(views_, top1_ok, top5_ok, class_ids)
            return
        gts = [view.gt for view in views_]
        quantized = boxes_lib.quantize_scoremaps(stack)
        shared = [{} for _ in views_]
        self.v1.update(stack, gts, quantized, shared)
        self.v2.update(stack, gts, quantized, shared)
        for view in views_:
            self._energy_and_sweep(view)
        pred = np.stack([predicted_box(v, self.box_threshold, self.box_method) for v in views_])
        shape = stack.shape[1:]
        self.loc.update_boxes(pred, gts, top1_ok, top5_ok, shape)
        self.corloc.update(pred, gts, class_ids, shape)
        for view, box in zip(views_, pred):
            self.coverage.update(view.scoremap, box, view.gt)

    def _energy_and_sweep(self, view):
        self.energy.append(object_energy(view))
        self.energy_map = "localization map" if view.energy is view.scoremap else "proposal"
        if self.box_method == "danet_union":
            self.sweep.update(view.scoremap, view.gt)

    def update_each(self, views_, top1_ok, top5_ok, class_ids):
        """`update` one image at a time (maps of different sizes)."""
        for j, view in enumerate(views_):
            shape = view.scoremap.shape
            self.v1.update(view.scoremap[None], [view.gt])
            self.v2.update(view.scoremap[None], [view.gt])
            self._energy_and_sweep(view)
            box = predicted_box(view, self.box_threshold, self.box_method)[None]
            self.loc.update_boxes(box, [view.gt], top1_ok[j : j + 1], top5_ok[j : j + 1], shape)
            self.corloc.update(box, [view.gt], class_ids[j : j + 1], shape)
            self.coverage.update(view.scoremap, box[0], view.gt)

    def curves(self):
        return self.v2.curves()

    def result(self):
        out = dict(self.loc.result())
        out["max_box_acc"] = self.v1.result()["max_box_acc_iou50"]
        r2 = self.v2.result()
        out["max_box_acc_v2"] = r2["max_box_acc"]
        for iou in self.iou_levels:
            out[f"max_box_acc_v2_iou{iou}"] = r2[f"max_box_acc_iou{iou}"]
        out.update(self.corloc.result())
        out["object_energy"] = 100.0 * float(np.mean(self.energy))
        out["object_energy_map"] = self.energy_map
        if self.box_method == "danet_union":
            out["danet_union_sweep"] = self.sweep.result()
        out.update(self.coverage.result())
        return out
