"""Procedural fine-grained benchmark that reproduces *part domination*.

Weakly supervised localizers trained with image labels only tend to light up the
smallest region that tells classes apart (CAM, Zhou et al. 2016; the failure ACoL,
Zhang et al. 2018, Sec. 1 and DANet, Xue et al. 2019, Sec. 1 are built against).
This benchmark makes that failure measurable on a CPU:

* **Groups** (level 1 of the hierarchy) differ by body shape: ellipse, rounded box,
  diamond, triangle. Bodies are large and textured.
* **Leaf classes** inside a group share the body and differ only by a small part
  (a head disk, a stripe, a spot, a tail) covering 5-15% of the object's pixels,
  drawn in a saturated class-specific hue (bodies and clutter use muted colours;
  a few clutter shapes use part hues too).
* **Supergroups** (level 2): round bodies (ellipse, rounded box) vs. angular bodies
  (diamond, triangle).
* **Clutter**: decoy bodies of every group *without* a part (so the body alone does
  not identify an object, while the part does) and random primitives sharing the
  same colours and textures; random position, scale, rotation, colour jitter; with
  some probability the scene is rendered on a non-square canvas and resized to
  S x S (the way real photos are squashed by a direct resize).

Ground truth per image: leaf label, ancestor labels, whole-object mask (body and
part), the part mask, and the box = inclusive pixel extent of the object mask.

Everything is a pure function of ``(seed, split, index)``: image ``i`` of a split is
the same whatever the split size, and splits use disjoint random streams.
"""

from __future__ import annotations

import math
from typing import Dict, List, Tuple

import cv2
import numpy as np

GROUPS: Tuple[str, ...] = ("ellipse", "roundbox", "diamond", "triangle")
PARTS: Tuple[str, ...] = ("head", "stripe", "spot", "tail")
SUPERGROUPS: Tuple[str, ...] = ("round", "angular")
# Level-2 parent of each group.
GROUP_TO_SUPER: Tuple[int, ...] = (0, 0, 1, 1)
SPLITS: Tuple[str, ...] = ("train", "val", "test")
# Distinct split streams (any fixed, distinct integers).
_SPLIT_STREAM = {"train": 11, "val": 22, "test": 33}


# Part colours: one saturated hue per leaf class (spaced over the hue circle), so
# the part alone identifies the leaf; bodies and clutter use the muted palette below.
def _part_colour(label: int, num_classes: int) -> np.ndarray:
    hue = int(round(180.0 * label / max(num_classes, 1))) % 180
    hsv = np.array([[[hue, 230, 235]]], np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)


# Shared body / clutter palette: every colour can appear on objects and distractors.
_PALETTE = np.array(
    [
        [150, 110, 80],
        [120, 130, 140],
        [90, 120, 70],
        [170, 150, 120],
        [100, 90, 130],
        [140, 100, 110],
        [80, 110, 120],
        [160, 160, 150],
        [110, 80, 60],
        [130, 150, 100],
    ],
    np.float32,
)


def class_names(num_groups: int = 4, classes_per_group: int = 2) -> List[str]:
    """Leaf class names ``"<group>-<part>"`` in label order."""
    return [
        f"{GROUPS[g]}-{PARTS[_part_kind(g, j)]}"
        for g in range(num_groups)
        for j in range(classes_per_group)
    ]


def hierarchy(num_groups: int = 4, classes_per_group: int = 2) -> np.ndarray:
    """int32 [C, 2]: column 0 = group id, column 1 = supergroup id."""
    rows = []
    for g in range(num_groups):
        for _ in range(classes_per_group):
            rows.append((g, GROUP_TO_SUPER[g]))
    return np.asarray(rows, np.int32).reshape(-1, 2)


def _part_kind(group: int, j: int) -> int:
    # Part shapes are shared across groups (shifted per group) so that only the
    # combination of part shape and colour identifies the leaf.
    return (group + j) % len(PARTS)


def _validate(cfg) -> None:
    ng, cpg = int(cfg["num_groups"]), int(cfg["classes_per_group"])
    if not 1 <= ng <= len(GROUPS):
        raise ValueError(
            f"synthetic.num_groups must be in [1, {len(GROUPS)}], got {ng}"
        )
    if not 1 <= cpg <= len(PARTS):
        raise ValueError(
            f"synthetic.classes_per_group must be in [1, {len(PARTS)}], got {cpg}"
        )
    lo, hi = cfg["part_fraction"]
    if not 0.05 <= lo <= hi <= 0.15:
        raise ValueError(
            f"synthetic.part_fraction must satisfy 0.05 <= lo <= hi <= 0.15, got {(lo, hi)}"
        )
    lo, hi = cfg["object_scale"]
    if not 0.1 <= lo <= hi <= 0.95:
        raise ValueError(
            f"synthetic.object_scale must be within [0.1, 0.95], got {(lo, hi)}"
        )


# --------------------------------------------------------------------------- shapes
def _body_polygon(group: int, a: float, b: float) -> np.ndarray:
    """Body outline in the body frame (length axis = x, half-length a, half-width b)."""
    if group == 0:  # ellipse
        t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
        return np.stack([a * np.cos(t), b * np.sin(t)], 1)
    if group == 1:  # rounded box: superellipse with exponent 4
        t = np.linspace(0, 2 * np.pi, 64, endpoint=False)
        c, s = np.cos(t), np.sin(t)
        return np.stack(
            [a * np.sign(c) * np.abs(c) ** 0.5, b * np.sign(s) * np.abs(s) ** 0.5], 1
        )
    if group == 2:  # diamond
        return np.array([[a, 0], [0, b], [-a, 0], [0, -b]], np.float64)
    # triangle: base at -a, apex at +a
    return np.array([[a, 0], [-a, b], [-a, -b]], np.float64)


def _part_polygon(kind: int, group: int, a: float, b: float, area: float) -> np.ndarray:
    """Part outline in the body frame with approximately ``area`` pixels."""
    if kind == 0:  # head: a disk centred on the +x end, half outside the body
        r = math.sqrt(area / math.pi)
        t = np.linspace(0, 2 * np.pi, 24, endpoint=False)
        cx = a - 0.35 * r
        return np.stack([cx + r * np.cos(t), r * np.sin(t)], 1)
    if kind == 1:  # stripe across the body (clipped to the body by the caller)
        width = max(area / (2 * b * 0.85), 1.5)
        x0 = -0.15 * a
        return np.array(
            [[x0, -2 * b], [x0 + width, -2 * b], [x0 + width, 2 * b], [x0, 2 * b]],
            np.float64,
        )
    if kind == 2:  # spot: a small square inside the body, off-centre
        h = math.sqrt(area) / 2
        cx = -0.45 * a if group != 3 else -0.55 * a
        return np.array(
            [[cx - h, -h], [cx + h, -h], [cx + h, h], [cx - h, h]], np.float64
        )
    # tail: a triangle sticking out of the -x end
    length = math.sqrt(area * 1.6)
    half = area / length
    return np.array(
        [
            [-a + 0.25 * length, -half],
            [-a - 0.75 * length, 0],
            [-a + 0.25 * length, half],
        ],
        np.float64,
    )


def _to_image(pts: np.ndarray, angle: float, cx: float, cy: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    x = pts[:, 0] * c - pts[:, 1] * s + cx
    y = pts[:, 0] * s + pts[:, 1] * c + cy
    return np.stack([x, y], 1)


def _fill(shape_hw, pts: np.ndarray) -> np.ndarray:
    m = np.zeros(shape_hw, np.uint8)
    # 4 fractional bits: sub-pixel vertex positions.
    cv2.fillPoly(
        m, [np.round(pts * 16).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=4
    )
    return m


# --------------------------------------------------------------------------- textures
def _texture(rng: np.random.Generator, h: int, w: int, jitter: float) -> np.ndarray:
    """A float32 [h, w, 3] texture from two palette colours."""
    c1, c2 = _PALETTE[rng.choice(len(_PALETTE), 2, replace=False)]
    c1 = c1 * (1 + rng.uniform(-jitter, jitter, 3))
    c2 = c2 * (1 + rng.uniform(-jitter, jitter, 3))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    kind = rng.integers(3)
    if kind == 0:  # oriented stripes
        th = rng.uniform(0, np.pi)
        period = rng.uniform(3.0, 7.0)
        t = 0.5 + 0.5 * np.sin(2 * np.pi * (xx * np.cos(th) + yy * np.sin(th)) / period)
    elif kind == 1:  # checker
        p = rng.uniform(3.0, 6.0)
        t = ((np.floor(xx / p) + np.floor(yy / p)) % 2).astype(np.float32)
    else:  # blotches: upsampled noise
        small = rng.uniform(0, 1, (max(h // 6, 2), max(w // 6, 2))).astype(np.float32)
        t = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC).clip(0, 1)
    return c1 * t[..., None] + c2 * (1 - t[..., None])


def _background(rng: np.random.Generator, h: int, w: int, jitter: float) -> np.ndarray:
    c1, c2 = _PALETTE[rng.choice(len(_PALETTE), 2, replace=False)]
    c1 = c1 * (1 + rng.uniform(-jitter, jitter, 3))
    c2 = c2 * (1 + rng.uniform(-jitter, jitter, 3))
    th = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    g = xx * math.cos(th) + yy * math.sin(th)
    g = (g - g.min()) / max(float(g.max() - g.min()), 1e-6)
    img = c1 * g[..., None] + c2 * (1 - g[..., None])
    low = rng.normal(0, 18, (4, 4, 3)).astype(np.float32)
    img += cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC)
    return img


# --------------------------------------------------------------------------- scene
def _render_one(rng: np.random.Generator, size: int, cfg) -> Dict[str, np.ndarray]:
    ng, cpg = int(cfg["num_groups"]), int(cfg["classes_per_group"])
    jitter = float(cfg["color_jitter"])
    label = int(rng.integers(ng * cpg))
    group, j = divmod(label, cpg)
    kind = _part_kind(group, j)

    # Canvas: sometimes non-square, long side = size, squashed to size x size later.
    h = w = size
    if rng.uniform() < float(cfg["nonsquare_prob"]):
        lo, hi = cfg["canvas_aspect"]
        ar = math.exp(rng.uniform(math.log(lo), math.log(hi)))  # w / h
        if ar >= 1:
            h = max(int(round(size / ar)), 8)
        else:
            w = max(int(round(size * ar)), 8)

    img = _background(rng, h, w, jitter)

    # Distractors: decoy bodies without parts and primitives, sharing colours/textures.
    lo, hi = cfg["num_distractors"]
    for _ in range(int(rng.integers(lo, hi + 1))):
        s = rng.uniform(0.15, 0.45) * min(h, w) * 1.3
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        ang = rng.uniform(0, 2 * np.pi)
        if rng.uniform() < float(cfg["decoy_prob"]):
            pts = _body_polygon(
                int(rng.integers(ng)), s / 2, s / 2 * rng.uniform(0.35, 0.7)
            )
        else:
            n = int(rng.integers(3, 7))
            t = np.sort(rng.uniform(0, 2 * np.pi, n))
            r = s / 2 * rng.uniform(0.5, 1.0, n)
            pts = np.stack([r * np.cos(t), r * np.sin(t)], 1)
        m = _fill((h, w), _to_image(pts, ang, cx, cy)).astype(bool)
        u = rng.uniform()
        if u < float(cfg["part_colour_distractor_prob"]):  # flat, in some part colour
            col = _part_colour(int(rng.integers(ng * cpg)), ng * cpg)
            img[m] = col * (1 + rng.uniform(-jitter, jitter, 3))
        elif u < 0.3:  # flat palette colour
            img[m] = _PALETTE[rng.integers(len(_PALETTE))] * (
                1 + rng.uniform(-jitter, jitter, 3)
            )
        else:
            img[m] = _texture(rng, h, w, jitter)[m]

    # The object.
    lo_f, hi_f = cfg["part_fraction"]
    lo_s, hi_s = cfg["object_scale"]
    for _attempt in range(50):
        length = rng.uniform(lo_s, hi_s) * min(h, w) * 1.15
        a = length / 2
        b = a * rng.uniform(0.4, 0.65)  # elongated bodies
        ang = rng.uniform(0, 2 * np.pi)
        body_pts = _body_polygon(group, a, b)
        body_area_est = _fill(
            (int(4 * a) + 8, int(4 * a) + 8), body_pts + 2 * a + 4
        ).sum()
        frac = rng.uniform(lo_f, hi_f)
        # part/(body + protruding part) = frac  ->  part area ~ frac/(1-frac) * body
        part_pts = _part_polygon(kind, group, a, b, frac / (1 - frac) * body_area_est)
        allpts = np.concatenate(
            [
                _to_image(body_pts, ang, 0, 0),
                _to_image(part_pts if kind != 1 else body_pts, ang, 0, 0),
            ]
        )
        xmin, ymin = allpts.min(0)
        xmax, ymax = allpts.max(0)
        if xmax - xmin > w - 3 or ymax - ymin > h - 3:
            continue
        cx = rng.uniform(1 - xmin, w - 2 - xmax)
        cy = rng.uniform(1 - ymin, h - 2 - ymax)
        body = _fill((h, w), _to_image(body_pts, ang, cx, cy))
        part = _fill((h, w), _to_image(part_pts, ang, cx, cy))
        if kind in (1, 2):
            part &= body  # stripes and spots live on the body
        obj = body | part
        if size != h or size != w:
            obj_r = cv2.resize(obj, (size, size), interpolation=cv2.INTER_NEAREST)
            part_r = (
                cv2.resize(part, (size, size), interpolation=cv2.INTER_NEAREST) & obj_r
            )
        else:
            obj_r, part_r = obj, part
        n_obj = int(obj_r.sum())
        if n_obj == 0:
            continue
        f = part_r.sum() / n_obj
        if 0.05 <= f <= 0.15:
            break
    else:  # pragma: no cover - the sampler above virtually always succeeds
        raise RuntimeError(
            "could not place a synthetic object; relax synthetic.object_scale"
        )

    tex = _texture(rng, h, w, jitter)
    bm = body.astype(bool)
    tex = tex * (1 + 0.15 * rng.uniform(-1, 1))
    # Keep the whole body visible against what lies under it (otherwise no method
    # could find the object's extent): at least `min_body_contrast` mean difference.
    diff = tex[bm].mean(0) - img[bm].mean(0)
    gap = float(cfg["min_body_contrast"]) - float(np.linalg.norm(diff))
    if gap > 0:
        sign = 1.0 if diff.sum() >= 0 else -1.0
        if tex[bm].mean() + sign * gap > 235:
            sign = -1.0
        elif tex[bm].mean() + sign * gap < 20:
            sign = 1.0
        tex = tex + sign * gap
    img[bm] = tex[bm]
    pcol = _part_colour(label, ng * cpg) * (1 + rng.uniform(-jitter, jitter, 3))
    img[part.astype(bool)] = pcol

    # Global photometric jitter and sensor noise.
    img = img * rng.uniform(0.8, 1.2) + rng.uniform(-20, 20)
    img += rng.normal(0, float(cfg["noise_std"]), img.shape).astype(np.float32)
    img = np.clip(img, 0, 255).astype(np.uint8)
    if size != h or size != w:
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)

    ys, xs = np.nonzero(obj_r)
    box = np.array([xs.min(), ys.min(), xs.max(), ys.max()], np.float32)
    return {
        "image": img,
        "label": label,
        "mask": obj_r.astype(np.uint8),
        "part_mask": part_r.astype(np.uint8),
        "box": box,
    }


def generate(cfg, split: str, image_size: int) -> Dict[str, np.ndarray]:
    """Renders one split.

    Args:
      cfg: mapping (e.g. the ``synthetic`` ConfigDict) with ``num_train``,
        ``num_val``, ``num_test``, ``seed``, ``num_groups``, ``classes_per_group``,
        ``object_scale``, ``part_fraction``, ``num_distractors``, ``decoy_prob``,
        ``nonsquare_prob``, ``canvas_aspect``, ``part_colour_distractor_prob``,
        ``min_body_contrast``, ``color_jitter``, ``noise_std`` (see
        ``wsol_keras.data.default_data_config``).
      split: "train", "val" or "test".
      image_size: output side S.

    Returns:
      dict of numpy arrays: image uint8 [N,S,S,3], label int32 [N], mask uint8
      [N,S,S] (object = body and part), part_mask uint8 [N,S,S], box float32 [N,4]
      (inclusive xyxy extent of mask), image_id (str objects) [N].
    """
    if split not in _SPLIT_STREAM:
        raise ValueError(f"unknown synthetic split {split!r}; expected one of {SPLITS}")
    _validate(cfg)
    n = int(cfg[f"num_{split}"])
    if n < 0:
        raise ValueError(f"synthetic.num_{split} must be >= 0, got {n}")
    s = int(image_size)
    if s < 16:
        raise ValueError(
            f"image_size must be >= 16 for the synthetic benchmark, got {s}"
        )
    out = {
        "image": np.zeros((n, s, s, 3), np.uint8),
        "label": np.zeros((n,), np.int32),
        "mask": np.zeros((n, s, s), np.uint8),
        "part_mask": np.zeros((n, s, s), np.uint8),
        "box": np.zeros((n, 4), np.float32),
        "image_id": np.array([f"synthetic/{split}/{i:06d}" for i in range(n)], object),
    }
    seed = int(cfg["seed"])
    for i in range(n):
        rng = np.random.default_rng(
            np.random.SeedSequence([seed, _SPLIT_STREAM[split], i])
        )
        r = _render_one(rng, s, cfg)
        out["image"][i] = r["image"]
        out["label"][i] = r["label"]
        out["mask"][i] = r["mask"]
        out["part_mask"][i] = r["part_mask"]
        out["box"][i] = r["box"]
    return out
