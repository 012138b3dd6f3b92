"""A procedural, object-centric classification set for pretraining backbones.

Every WSOL paper fine-tunes a backbone pretrained on ImageNet (CAM, Zhou et
al. CVPR 2016, Sec. 3; ACoL, Zhang et al. CVPR 2018, Sec. 4.1; SPN, Zhu et al.
ICCV 2017, Sec. 4; DANet, Xue et al. ICCV 2019, Sec. 4.1; SLT-Net, Guo et al.
CVPR 2022, Sec. 4.1; DGL, Tan et al. 2020, Sec. 4.1).  This set plays
ImageNet's role where no such weights exist: many classes of objects in
clutter, so a backbone learns generic shape, texture and colour features
before it is fine-tuned on a localization benchmark.

**Classes** (``num_classes = 10 x 4 x 2 x 3 = 240``): a class is the
combination of

* a *shape family*: star, cross, crescent, heart, arrow, hexagon, L, T,
  bolt, gear (`FAMILIES`);
* a *texture* painted over the whole object: solid, stripes, dots, checker
  (`TEXTURES`; period, orientation and phase random);
* a *colour pattern*: "mono" (light and dark shades of one hue) or "duo"
  (two hues half a turn apart); the hue itself is random (`COLOURINGS`);
* a *part*: none, an outline (a contrasting rim along the whole contour) or
  antennae (two thin strokes at the shape's top end) (`PARTS`).

Each image holds one object of its class at a random scale (0.35-0.8 of the
side), position and rotation, over a smooth two-colour background with 1-4
clutter blobs (random polygons, textured or flat); with probability
``occlusion_prob`` a blob is drawn over the object. Labels are uniform.

**Disjoint from the fine-grained benchmark** (:mod:`wsol_keras.data.synthetic`):
there, a class is a body shape from {ellipse, rounded box, diamond, triangle}
plus one small part (head disk, stripe, spot or tail) painted in a saturated
class-specific hue, and only that part tells classes of a group apart.  Here
no family is one of those four bodies (every family has corners or concave
parts those bodies lack), hue carries no class information (it is drawn
uniformly for every image), and the parts (outline, antennae) are none of
the benchmark's four.  No benchmark class -- its body, its part or its part
hue -- is a class, or a class-defining cue, of this set.  The two share only
the background and clutter drawing (`synthetic._background`, `_fill`,
`_to_image`) and generic image statistics.

Everything is generated on the fly: image ``i`` of a split is a pure
function of ``(pretrain.seed, split, i)``, and the training stream of
`PretrainSource.train_dataset` is endless (a new image at every step,
``(pretrain.seed, seed, position)``), so nothing is written to disk and no
image repeats; ``train.crop_scale`` and ``train.flip`` add nothing to fresh
images in random poses and are not applied.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import tensorflow as tf

from wsol_keras.data import synthetic
from wsol_keras.data.pipeline import MAX_BOXES
from wsol_keras.data.pipeline import DataSource

FAMILIES = (
    "star", "cross", "crescent", "heart", "arrow",
    "hexagon", "ell", "tee", "bolt", "gear",
)
TEXTURES = ("solid", "stripes", "dots", "checker")
COLOURINGS = ("mono", "duo")
PARTS = ("plain", "outline", "antennae")
SPLITS = ("train", "val", "test")
_SPLIT_STREAM = {"train": 101, "val": 202, "test": 303, "stream": 404}


def class_names():
    """The 240 names ``"<family>-<texture>-<colouring>-<part>"`` in label order."""
    return [
        f"{f}-{t}-{c}-{p}"
        for f in FAMILIES for t in TEXTURES for c in COLOURINGS for p in PARTS
    ]


def hierarchy():
    """int32 [C, 1]: the shape family of each class."""
    per_family = len(TEXTURES) * len(COLOURINGS) * len(PARTS)
    return (np.arange(len(class_names())) // per_family).astype(np.int32)[:, None]


def decode_label(label):
    """(family, texture, colouring, part) indices of a label."""
    rest, part = divmod(int(label), len(PARTS))
    rest, colouring = divmod(rest, len(COLOURINGS))
    family, texture = divmod(rest, len(TEXTURES))
    return family, texture, colouring, part


# --------------------------------------------------------------------- shapes
def _circle(r, n=32, cx=0.0, cy=0.0, start=0.0, stop=2 * np.pi):
    t = np.linspace(start, stop, n, endpoint=False)
    return np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], 1)


def _family_polygon(family):
    """Outline of a family in a unit frame (extent about [-1, 1]; top = -y)."""
    if family == 0:  # five-point star
        t = np.arange(10) * np.pi / 5 - np.pi / 2
        r = np.where(np.arange(10) % 2 == 0, 1.0, 0.42)
        return np.stack([r * np.cos(t), r * np.sin(t)], 1)
    if family == 1:  # plus-shaped cross
        a, b = 1.0, 0.3
        return np.array([[-b, -a], [b, -a], [b, -b], [a, -b], [a, b], [b, b],
                         [b, a], [-b, a], [-b, b], [-a, b], [-a, -b], [-b, -b]])
    if family == 2:  # crescent: outer arc, then the inner arc back
        outer = _circle(1.0, 24, start=0.35 * np.pi, stop=1.65 * np.pi)
        inner = _circle(0.8, 24, cx=-0.45, start=0.4 * np.pi, stop=1.6 * np.pi)
        return np.concatenate([outer, inner[::-1]])
    if family == 3:  # heart (parametric), point at the bottom
        t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
        x = 16 * np.sin(t) ** 3
        y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
        return np.stack([x, y + 2.5], 1) / 16.0
    if family == 4:  # arrow pointing up
        return np.array([[0, -1], [0.75, -0.2], [0.28, -0.2], [0.28, 1],
                         [-0.28, 1], [-0.28, -0.2], [-0.75, -0.2]])
    if family == 5:  # hexagon
        return _circle(1.0, 6, start=np.pi / 6)
    if family == 6:  # L
        return np.array([[-0.7, -1], [-0.15, -1], [-0.15, 0.45], [0.75, 0.45],
                         [0.75, 1], [-0.7, 1]])
    if family == 7:  # T
        return np.array([[-1, -1], [1, -1], [1, -0.45], [0.27, -0.45],
                         [0.27, 1], [-0.27, 1], [-0.27, -0.45], [-1, -0.45]])
    if family == 8:  # lightning bolt
        return np.array([[0.1, -1], [0.6, -1], [0.15, -0.1], [0.55, -0.1],
                         [-0.4, 1], [-0.05, 0.15], [-0.5, 0.15]])
    # gear: 8 square teeth on a disk
    t = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    r = np.where((t * 8 / (2 * np.pi)) % 1.0 < 0.5, 1.0, 0.72)
    return np.stack([r * np.cos(t), r * np.sin(t)], 1)


# ------------------------------------------------------------------- painting
def _hsv(h, s, v):
    hsv = np.array([[[h % 180, s, v]]], np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)


def _colours(rng, colouring):
    """Two colours: shades of one hue ("mono") or opposite hues ("duo")."""
    hue = int(rng.integers(180))
    sat = int(rng.integers(120, 230))
    if colouring == 0:
        return _hsv(hue, sat, int(rng.integers(200, 250))), _hsv(
            hue, sat, int(rng.integers(50, 100)))
    v = int(rng.integers(150, 240))
    return _hsv(hue, sat, v), _hsv(hue + 90, sat, v)


def _pattern(rng, texture, h, w, scale):
    """float32 [h, w] in {0, 1}-ish: where the second colour goes."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    th = rng.uniform(0, np.pi)
    u = xx * math.cos(th) + yy * math.sin(th)
    v = -xx * math.sin(th) + yy * math.cos(th)
    period = max(3.0, scale * rng.uniform(0.22, 0.35))
    if texture == 0:  # solid: the second colour on one half of the object
        return (v > rng.uniform(-0.15, 0.15) * scale + v.mean()).astype(np.float32)
    if texture == 1:  # stripes
        return (np.sin(2 * np.pi * u / period + rng.uniform(0, 6.3)) > 0).astype(np.float32)
    if texture == 2:  # dots on a hexagonal-ish lattice
        fu = (u / period + rng.uniform()) % 1.0 - 0.5
        fv = (v / period + rng.uniform()) % 1.0 - 0.5
        return (fu * fu + fv * fv < 0.09).astype(np.float32)
    # checker
    return ((np.floor(u / period) + np.floor(v / period)) % 2).astype(np.float32)


def _render_one(rng, size, cfg):
    label = int(rng.integers(len(FAMILIES) * len(TEXTURES) * len(COLOURINGS) * len(PARTS)))
    family, texture, colouring, part = decode_label(label)
    img = synthetic._background(rng, size, size, 0.15)

    def blob(scale):
        n = int(rng.integers(3, 8))
        t = np.sort(rng.uniform(0, 2 * np.pi, n))
        pts = np.stack([np.cos(t), np.sin(t)], 1) * rng.uniform(0.5, 1.0, (n, 1))
        return _placed(pts * scale / 2, rng.uniform(0, size), rng.uniform(0, size))

    def _placed(pts, cx, cy):
        return synthetic._fill((size, size), synthetic._to_image(
            pts, rng.uniform(0, 2 * np.pi), cx, cy)).astype(bool)

    def paint_blob(m):
        if rng.uniform() < 0.5:
            img[m] = _hsv(int(rng.integers(180)), int(rng.integers(0, 200)),
                          int(rng.integers(60, 230)))
        else:
            c1, c2 = _colours(rng, int(rng.integers(2)))
            p = _pattern(rng, int(rng.integers(1, 4)), size, size, size * 0.4)[..., None]
            img[m] = (c1 * (1 - p) + c2 * p)[m]

    lo, hi = cfg["num_clutter"]
    for _ in range(int(rng.integers(lo, hi + 1))):
        paint_blob(blob(rng.uniform(0.15, 0.4) * size))

    lo, hi = cfg["object_scale"]
    scale = rng.uniform(lo, hi) * size
    pts = _family_polygon(family) * scale / 2
    pts = pts * np.array([1.0, rng.uniform(0.8, 1.2)])  # aspect jitter
    margin = scale / 2
    cx = rng.uniform(margin, size - margin)
    cy = rng.uniform(margin, size - margin)
    angle = rng.uniform(0, 2 * np.pi)
    body = synthetic._fill((size, size), synthetic._to_image(pts, angle, cx, cy)).astype(bool)
    c1, c2 = _colours(rng, colouring)
    p = _pattern(rng, texture, size, size, scale)[..., None]
    img[body] = (c1 * (1 - p) + c2 * p)[body]
    obj = body.copy()
    if part == 1:  # outline: a contrasting rim along the contour
        width = max(1, int(round(scale / 14)))
        eroded = cv2.erode(body.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=width)
        rim = body & ~eroded.astype(bool)
        img[rim] = 255.0 - img[rim].mean(0) if rng.uniform() < 0.5 else 20.0
    elif part == 2:  # antennae at the top end (-y of the shape frame)
        top = pts[np.argmin(pts[:, 1])]
        canvas = np.zeros((size, size), np.uint8)
        for side in (-1.0, 1.0):
            tip = top + np.array([side * 0.35, -0.45]) * scale
            ends = synthetic._to_image(np.stack([top, tip]), angle, cx, cy)
            cv2.line(canvas, tuple(np.round(ends[0] * 16).astype(int)),
                     tuple(np.round(ends[1] * 16).astype(int)), 1,
                     thickness=max(1, int(round(scale / 18))), lineType=cv2.LINE_8, shift=4)
        stroke = canvas.astype(bool)
        img[stroke] = c2 * 0.6
        obj |= stroke
    mask = obj.copy()
    if rng.uniform() < float(cfg["occlusion_prob"]):
        occ = synthetic._fill((size, size), synthetic._to_image(
            _circle(1.0, 7) * rng.uniform(0.15, 0.3) * size,
            0.0, cx + rng.uniform(-0.4, 0.4) * scale, cy + rng.uniform(-0.4, 0.4) * scale
        )).astype(bool)
        paint_blob(occ)
        mask &= ~occ
    img = img * rng.uniform(0.85, 1.15) + rng.uniform(-15, 15)
    img += rng.normal(0, 4.0, img.shape).astype(np.float32)
    ys, xs = np.nonzero(obj)
    box = np.array([xs.min(), ys.min(), xs.max(), ys.max()], np.float32)
    return np.clip(img, 0, 255).astype(np.uint8), np.int32(label), mask.astype(np.uint8), box


def render(seed, stream, index, size, cfg):
    """Image `index` of `stream`: (image uint8 [S,S,3], label, mask, box)."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), *stream, int(index)]))
    return _render_one(rng, int(size), cfg)


class PretrainSource(DataSource):
    """The pretraining set as a `DataSource` (``config.data.name="pretrain"``).

    Args:
      data_config: the data config; reads ``image_size`` and the ``pretrain``
        section (num_train, num_val, num_test, seed, object_scale,
        num_clutter, occlusion_prob).
    """

    def __init__(self, data_config):
        cfg = dict(data_config.pretrain)
        lo, hi = cfg["object_scale"]
        if not 0.2 <= lo <= hi <= 0.9:
            raise ValueError(
                f"data.pretrain.object_scale must be within [0.2, 0.9], got {(lo, hi)}")
        if int(data_config.image_size) < 24:
            raise ValueError(
                f"data.image_size must be >= 24 for the pretraining set, got "
                f"{data_config.image_size}")
        super().__init__(class_names(), hierarchy(), SPLITS, int(data_config.image_size))
        self._cfg = cfg

    def num_examples(self, split):
        self._check_split(split)
        return int(self._cfg[f"num_{split}"])

    def _stream(self, indices, stream, prefix):
        size, cfg, seed = self.image_size, self._cfg, int(self._cfg["seed"])

        def draw(i):
            return render(seed, stream, i, size, cfg)

        def element(i):
            image, label, mask, box = tf.numpy_function(
                draw, [i], (tf.uint8, tf.int32, tf.uint8, tf.float32), stateful=False)
            image.set_shape((size, size, 3))
            label.set_shape(())
            mask.set_shape((size, size))
            boxes = tf.concat([tf.reshape(box, (1, 4)), -tf.ones((MAX_BOXES - 1, 4))], 0)
            return {
                "image": image,
                "label": label,
                "hierarchy": tf.gather(tf.constant(self.hierarchy), label),
                "boxes": boxes,
                "num_boxes": tf.constant(1, tf.int32),
                "mask": mask,
                "has_mask": tf.constant(True),
                "image_id": tf.strings.join([prefix, tf.strings.as_string(i, width=7, fill="0")]),
                "original_size": tf.constant([size, size], tf.int32),
            }

        return indices.map(element, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    def dataset(self, split):
        n = self.num_examples(split)
        return self._stream(tf.data.Dataset.range(n), [_SPLIT_STREAM[split]], f"pretrain/{split}/")

    def train_dataset(self, split, seed, scale, flip, skip=0):
        """Endless fresh images: element k is image ``skip + k`` of the stream
        of training seed `seed` (a resumed run continues it exactly)."""
        self._check_split(split)
        stream = [_SPLIT_STREAM["stream"], _SPLIT_STREAM[split], int(seed)]
        return self._stream(
            tf.data.Dataset.range(int(skip), np.iinfo(np.int64).max), stream,
            f"pretrain/{split}-stream/")
