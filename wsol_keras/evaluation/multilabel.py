"""SPN's evaluation protocol run on a trained multi-label model and source.

Kept apart from :mod:`wsol_keras.evaluation.evaluator` (single-label, wsolevaluation's
protocol) so the two can change independently; the numbers come from
:mod:`wsol_keras.evaluation.multilabel_metrics`. Maps are taken at the original image size
(SPN Sec. 4.2-4.3: response maps "rescaled to the original image size"): the
class's CAM is bilinearly resized to (H, W), boxes of the element are mapped back
by W/S, H/S.
"""

from __future__ import annotations

from typing import Dict, Optional

import cv2
import numpy as np
import tensorflow as tf

from wsol_keras.evaluation import multilabel_metrics as mm
def collect(model, source, split: str, batch_size: int, max_images: Optional[int] = None):
    """Per-image points, SPN boxes, scores and ground truth of ``split``."""
    if not getattr(source, "multi_label", False):
        raise ValueError("multilabel_eval needs a multi-label source (voc / tfds voc, coco)")
    c = source.num_classes
    size = float(source.image_size)
    n = source.num_examples(split)
    if max_images:
        n = min(n, int(max_images))
    out = {k: [] for k in ("points", "pred_boxes", "scores", "boxes", "labels", "difficult", "sizes", "image_ids")}
    for batch in source.dataset(split).take(n).batch(batch_size):
        res = model(tf.cast(batch["image"], tf.float32), training=False)
        logits = tf.cast(res["logits"], tf.float32).numpy()
        cams = tf.cast(res["cams"], tf.float32).numpy()  # [B, h, w, C]
        b = {k: v.numpy() for k, v in batch.items() if k != "image"}
        for i in range(len(logits)):
            h, w = (int(v) for v in b["original_size"][i])
            k = int(b["num_objects"][i])
            boxes = b["object_boxes"][i, :k].astype(np.float64) * [w / size, h / size, w / size, h / size]
            labels = b["object_labels"][i, :k]
            points, pboxes = {}, {}
            for cls in sorted(set(labels.tolist())):
                m = cv2.resize(cams[i, :, :, cls], (w, h), interpolation=cv2.INTER_LINEAR)
                points[cls] = mm.max_point(m)
                pboxes[cls] = mm.spn_box(m)
            out["points"].append(points)
            out["pred_boxes"].append(pboxes)
            out["scores"].append(1.0 / (1.0 + np.exp(-logits[i])))
            out["boxes"].append(boxes)
            out["labels"].append(labels)
            out["difficult"].append(b["object_difficult"][i, :k])
            out["sizes"].append((h, w))
            out["image_ids"].append(b["image_id"][i].decode())
    out["scores"] = np.asarray(out["scores"]).reshape(-1, c)
    return out


def _json_list(a):
    return [None if np.isnan(v) else float(v) for v in np.asarray(a, np.float64)]


def spn_protocol(
    model, source, config, test_split="test", corloc_split="train",
    difficult_flags: Optional[str] = None,
) -> Dict[str, object]:
    """Pointing game (All, Diff.) and mAP on ``test_split``; CorLoc on ``corloc_split``.

    SPN evaluates pointing and mAP on VOC 2007 test and CorLoc on trainval (the
    voc config's "train" split). ``difficult_flags``: Zhang et al.'s published
    (image, class) flag file for Diff. (see
    :func:`wsol_keras.evaluation.multilabel_metrics.read_difficult_flags`); without it the
    paper's rule is applied (:func:`~wsol_keras.evaluation.multilabel_metrics.zhang_difficult_images`)
    and ``difficult_subset`` says so. Returns scalars in percent plus per-class arrays.
    """
    e = config.eval
    c = source.num_classes
    t = collect(model, source, test_split, int(e.batch_size), e.get("max_images"))
    tol = float(e.get("pointing_tolerance", 15))
    all_ = mm.pointing_game(t["points"], t["boxes"], t["labels"], c, tol)
    if difficult_flags:
        diff_mask = mm.read_difficult_flags(difficult_flags, t["image_ids"], c)
        subset_kind = f"published flags ({difficult_flags})"
    else:
        diff_mask = mm.zhang_difficult_images(t["boxes"], t["labels"], t["sizes"])
        subset_kind = "rule: small object (< 1/4 image) and >= 2 classes"
    diff = mm.pointing_game(t["points"], t["boxes"], t["labels"], c, tol, subset=diff_mask)
    states = np.stack(
        [mm.label_states(l, d, c) for l, d in zip(t["labels"], t["difficult"])]
    ) if t["labels"] else np.zeros((0, c), np.int32)
    cls_map = mm.classification_map(t["scores"], states)
    tc = t if corloc_split == test_split else collect(
        model, source, corloc_split, int(e.batch_size), e.get("max_images")
    )
    cl = mm.corloc(tc["pred_boxes"], tc["boxes"], tc["labels"], tc["difficult"], c)
    return {
        "pointing_all": 100.0 * all_["mean"],
        "pointing_difficult": 100.0 * diff["mean"],
        "num_difficult_images": int(np.asarray(diff_mask).reshape(len(t["boxes"]), -1).any(1).sum()),
        "difficult_subset": subset_kind,
        "corloc": 100.0 * cl["mean"],
        "classification_map": 100.0 * cls_map["mean"],
        # null: the class has no image in that set.
        "per_class": {
            "pointing_all": _json_list(all_["per_class"]),
            "pointing_difficult": _json_list(diff["per_class"]),
            "corloc": _json_list(cl["per_class"]),
            "ap": _json_list(cls_map["per_class"]),
        },
        "class_names": list(source.class_names),
    }


def evaluate_and_report(model, source, config, workdir, split="test") -> Dict[str, object]:
    """Runs :func:`spn_protocol` (pointing and mAP on `split`) and writes
    ``spn_protocol.json`` atomically into the folder `workdir` (wsol-train: the
    workdir; wsol-eval: its ``eval/<key>/`` record folder)."""
    import os

    from wsol_keras.training import workdir as workdir_lib
    result = spn_protocol(model, source, config, test_split=split)
    workdir_lib.write_json_atomic(os.path.join(workdir, "spn_protocol.json"), result)
    return result


def format_table(result) -> str:
    rows = [("pointing (All)", "pointing_all"), ("pointing (Diff.)", "pointing_difficult"),
            ("CorLoc", "corloc"), ("classification mAP", "classification_map")]
    return "\n".join(f"{name:20s} {result[key]:6.2f}" for name, key in rows)
