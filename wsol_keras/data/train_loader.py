"""The training input path of file sources: one decode, one resize, one crop.

The papers train on random S x S crops of the *original* image resized to
S * crop_scale (256 for S = 224): CAM (Zhou et al. 2016, Sec. 3), ACoL (Zhang
et al. 2018, Sec. 4.1), DANet (Xue et al. 2019, Sec. 4.1), and wsolevaluation
(Choe et al. 2020; its data loader: ``Resize((256, 256))``, ``RandomCrop(224)``,
``RandomHorizontalFlip()``). Resizing the source's S x S element up again
(original -> 224 -> 256 -> crop) costs a second resize and blurs, so file
sources build their training elements here straight from the file:

* the record order is a full, lazily computed permutation per epoch
  (``tf.random.experimental.index_shuffle``): no shuffle buffer of decoded
  images to fill before the first batch, and a class-ordered list (ILSVRC)
  is shuffled across all classes;
* each element is decoded, resized once from its original size to
  big x big (big = round(S * scale); bilinear, antialiased like PIL's resize
  that wsolevaluation uses), cropped S x S at a random offset and flipped;
  boxes go original -> big -> crop in one scale-and-shift, masks are resized
  (nearest) to big and cropped with the same offset;
* a split without any mask skips all mask decoding (zeros, ``has_mask`` False);
* the map runs with ``num_parallel_calls=AUTOTUNE`` and ``deterministic=False``
  (order within the parallel window may vary; the crop and flip of an element
  depend only on its per-element seed). Evaluation datasets stay deterministic.

The random draws use the same stateless seeds as
:func:`wsol_keras.data.augment.train_augment` (offsets from split 0 and 1, the
flip from split 2), so the two paths differ only in what they resize.
"""

from __future__ import annotations

import tensorflow as tf

from wsol_keras.data import augment
from wsol_keras.data import loaders as pipeline


def epoch_order(num_examples: int, seed: int) -> tf.data.Dataset:
    """int64 indices 0..n-1 in a new random order each iteration (O(1) memory)."""
    n = int(num_examples)
    if n < 1:
        raise ValueError("cannot build a training dataset of an empty split")
    keys = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).take(1)

    def permuted(key):
        key2 = tf.stack([key, tf.constant(seed, tf.int64)])
        return tf.data.Dataset.range(n).map(
            lambda i: tf.random.experimental.index_shuffle(
                i, key2, tf.constant(n - 1, tf.int64)
            )
        )

    return keys.flat_map(permuted)


def make_train_loader(size: int, scale: float, flip: bool, hierarchy, mask_threshold,
                      with_masks: bool, antialias: bool = True):
    """Returns fn(record fields..., seed) -> a training contract element.

    Args:
      size: output side S.
      scale: big = round(S * scale) is the side the original is resized to
        before the S x S crop (>= 1; 1 = no crop, a direct resize).
      flip: random horizontal flip with probability 0.5.
      hierarchy: int32 [C, L].
      mask_threshold: as :func:`wsol_keras.data.pipeline.make_loader`.
      with_masks: False when the split lists no mask: mask work is skipped.
      antialias: bilinear with antialiasing (PIL's resize, the papers' loaders);
        False: plain bilinear (about 3x cheaper on CPU, aliases on downscaling).
    """
    if scale < 1.0:
        raise ValueError(f"scale must be >= 1, got {scale}")
    s = int(size)
    big = int(round(s * scale))
    hier = tf.constant(pipeline.hierarchy_table(hierarchy))
    load_mask = pipeline.make_mask_loader(big, mask_threshold)

    def load(path, label, boxes, num_boxes, mask_paths, ignore_path, image_id, seed):
        seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 5)
        image = pipeline.decode_rgb(path)
        shape = tf.shape(image)
        h, w = shape[0], shape[1]
        if big > s:
            ox = tf.random.stateless_uniform([], seeds[0], 0, big - s + 1, tf.int32)
            oy = tf.random.stateless_uniform([], seeds[1], 0, big - s + 1, tf.int32)
        else:
            ox = oy = tf.constant(0, tf.int32)
        resized = tf.image.resize(
            image, [big, big], method="bilinear", antialias=antialias
        )
        crop = tf.slice(resized, tf.stack([oy, ox, 0]), [s, s, 3])
        out = {
            "image": tf.cast(tf.clip_by_value(tf.round(crop), 0, 255), tf.uint8),
            "label": tf.cast(label, tf.int32),
            "hierarchy": tf.gather(hier, label),
            "image_id": image_id,
            "original_size": tf.stack([h, w]),
        }
        big_boxes = pipeline.scale_boxes(boxes, num_boxes, h, w, big)
        out["boxes"], out["num_boxes"] = augment.crop_boxes(
            big_boxes, num_boxes, ox, oy, s
        )
        if with_masks:
            mask, has_mask = load_mask(mask_paths, ignore_path)
            out["mask"] = tf.slice(mask, tf.stack([oy, ox]), [s, s])
            out["has_mask"] = has_mask
        else:
            out["mask"] = tf.zeros([s, s], tf.uint8)
            out["has_mask"] = tf.constant(False)
        if flip:
            do = tf.random.stateless_uniform([], seeds[2]) < 0.5
            out = tf.cond(do, lambda: augment.hflip(out), lambda: dict(out))
        out["image"] = tf.ensure_shape(out["image"], [s, s, 3])
        out["mask"] = tf.ensure_shape(out["mask"], [s, s])
        return out

    return load


def train_dataset(source, split: str, seed: int, scale: float, flip: bool, skip: int = 0):
    """Endless shuffled, augmented, unbatched training elements of a FileSource split.

    A new permutation each pass, a function of ``seed``; the first ``skip``
    elements are dropped as indices, before any file is read (exact resume).
    Decoding runs in parallel with ``deterministic=False`` for throughput, so
    elements may leave in a slightly different order than they were drawn.
    """
    rec = source.validated_records(split)
    fields = pipeline.records_tensors(rec)
    loader = make_train_loader(
        source.image_size, scale, flip, source.hierarchy, source.mask_threshold,
        pipeline.has_any_mask(rec), source.train_resize_antialias,
    )
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    ds = tf.data.Dataset.zip((epoch_order(len(rec), seed).repeat(), seeds))
    if skip:
        ds = ds.skip(skip)
    ds = ds.map(
        lambda i, sd: loader(*[tf.gather(f, i) for f in fields], sd),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=False,
    )
    if not source.validates_images:
        ds = ds.ignore_errors(log_warning=True)
    return ds
