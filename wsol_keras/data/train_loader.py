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
* each element is the S x S crop at a random offset of the original resized
  once to big x big (big = round(S * scale); bilinear, antialiased like PIL's
  resize that wsolevaluation uses), flipped at random. With antialiasing the
  crop is computed from its window of the original alone (JPEGs decoded only
  inside it; :mod:`wsol_keras.data.crop_resize`), equal to resize-then-crop
  up to float rounding, ~12% less CPU per image; boxes go original -> big ->
  crop in one scale-and-shift, masks are resized (nearest) to big and cropped with
  the same offset;
* a split without any mask skips all mask decoding (zeros, ``has_mask`` False);
* ``data.train_cache``: the split is decoded and resized to big x big once
  (uint8, in memory: N * big^2 * 3 bytes, 1.2 GB for CUB's 5,994 training
  images at 256) before the first batch; every element after that is a slice
  and a flip, no decoding. The same images as without the cache (within one
  grey level of float rounding), the same order and draws;
* the per-element map runs with ``num_parallel_calls=AUTOTUNE``;
  ``data.train_deterministic`` (default True) keeps the output order equal to
  the drawn order, so a run is a function of its seed and a resumed run sees
  the uninterrupted run's batches. False lets finished elements overtake slow
  ones (the crop and flip of an element still depend only on its own seed, but
  which batch it lands in depends on timing): measured no faster (per-element
  work is uniform), and no exact resume or reproducible batches. Evaluation
  datasets stay deterministic.

``data.resize_mode="shorter_side"`` resizes the shorter side to big and the
longer to ``int(big * long / short)`` instead (torchvision's ``Resize(int)``,
ACoL's released loader), and crops at a random offset of that H' x W' image;
it decodes the whole image (no window decode) and has no cache.

The random draws use the same stateless seeds as
:func:`wsol_keras.data.augment.train_augment` (offsets from split 0 and 1, the
flip from split 2), so the two paths differ only in what they resize.
"""

from __future__ import annotations

import tensorflow as tf

from wsol_keras.data import augment
from wsol_keras.data import crop_resize
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


def _offsets_and_flip(seed, size: int, big: int):
    """The element's crop offsets (ox, oy) and flip draw from its seed."""
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 5)
    if big > size:
        ox = tf.random.stateless_uniform([], seeds[0], 0, big - size + 1, tf.int32)
        oy = tf.random.stateless_uniform([], seeds[1], 0, big - size + 1, tf.int32)
    else:
        ox = oy = tf.constant(0, tf.int32)
    return ox, oy, tf.random.stateless_uniform([], seeds[2]) < 0.5


def shorter_side_dims(h, w, big: int):
    """(H', W') of torchvision ``Resize(big)``: the shorter side to big, the
    longer ``int(big * long / short)`` (truncated, float64 as Python's)."""
    h64, w64 = tf.cast(h, tf.float64), tf.cast(w, tf.float64)
    b = tf.constant(float(big), tf.float64)
    long_h = tf.cast(tf.floor(b * h64 / w64), tf.int32)
    long_w = tf.cast(tf.floor(b * w64 / h64), tf.int32)
    bh = tf.where(w < h, long_h, int(big))
    bw = tf.where(w < h, int(big), long_w)
    return bh, bw


def shorter_side_resize(image, big: int, antialias: bool = True):
    """float32 [H', W', 3]: `image` with its shorter side resized to big
    (bilinear, antialiased like PIL; `shorter_side_dims`)."""
    shape = tf.shape(image)
    bh, bw = shorter_side_dims(shape[0], shape[1], big)
    return tf.image.resize(image, tf.stack([bh, bw]), method="bilinear",
                           antialias=antialias)


def _offsets_and_flip_hw(seed, size: int, bh, bw):
    """`_offsets_and_flip` on a big_h x big_w image (same seeds)."""
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 5)
    ox = tf.random.stateless_uniform([], seeds[0], 0, bw - size + 1, tf.int32)
    oy = tf.random.stateless_uniform([], seeds[1], 0, bh - size + 1, tf.int32)
    return ox, oy, tf.random.stateless_uniform([], seeds[2]) < 0.5


def _to_uint8(image):
    return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)


def _element(image, h, w, label, boxes, num_boxes, image_id, mask, has_mask,
             ox, oy, do_flip, size: int, big: int, hier, flip: bool, big_hw=None):
    """The contract element of an S x S crop (image uint8; mask uint8 or None)
    of the original resized to big x big, or to ``big_hw`` = (H', W')."""
    s = size
    out = {
        "image": image,
        "label": tf.cast(label, tf.int32),
        "hierarchy": tf.gather(hier, label),
        "image_id": image_id,
        "original_size": tf.stack([h, w]),
    }
    if big_hw is None:
        big_boxes = pipeline.scale_boxes(boxes, num_boxes, h, w, big)
    else:
        sx = tf.cast(big_hw[1], tf.float32) / tf.cast(w, tf.float32)
        sy = tf.cast(big_hw[0], tf.float32) / tf.cast(h, tf.float32)
        valid = tf.range(tf.shape(boxes)[0]) < num_boxes
        big_boxes = tf.where(valid[:, None], boxes * tf.stack([sx, sy, sx, sy]),
                             -tf.ones_like(boxes))
    out["boxes"], out["num_boxes"] = augment.crop_boxes(big_boxes, num_boxes, ox, oy, s)
    if mask is None:
        out["mask"] = tf.zeros([s, s], tf.uint8)
        out["has_mask"] = tf.constant(False)
    else:
        out["mask"], out["has_mask"] = mask, has_mask
    if flip:
        out = tf.cond(do_flip, lambda: augment.hflip(out), lambda: dict(out))
    out["image"] = tf.ensure_shape(out["image"], [s, s, 3])
    out["mask"] = tf.ensure_shape(out["mask"], [s, s])
    return out


def _big_side(size: int, scale: float) -> int:
    if scale < 1.0:
        raise ValueError(f"scale must be >= 1, got {scale}")
    return int(round(int(size) * scale))


def make_train_loader(size: int, scale: float, flip: bool, hierarchy, mask_threshold,
                      with_masks: bool, antialias: bool = True,
                      shorter_side: bool = False):
    """Returns fn(record fields..., seed) -> a training contract element.

    Args:
      size: output side S.
      scale: big = round(S * scale) is the side the original is resized to
        before the S x S crop (>= 1; 1 = no crop, a direct resize).
      flip: random horizontal flip with probability 0.5.
      hierarchy: int32 [C, L].
      mask_threshold: as :func:`wsol_keras.data.pipeline.make_loader`.
      with_masks: False when the split lists no mask: mask work is skipped.
      antialias: bilinear with antialiasing (PIL's resize, the papers' loaders),
        computed for the crop's window only; False: plain bilinear of the whole
        image then the crop (cheaper on CPU, aliases on downscaling).
      shorter_side: resize the shorter side to big keeping the aspect ratio
        (`shorter_side_dims`; ACoL's released ``Resize(256)``) instead of
        big x big; masks are loaded at big x big, then resized (nearest).
    """
    s = int(size)
    big = _big_side(s, scale)
    hier = tf.constant(pipeline.hierarchy_table(hierarchy))
    load_mask = pipeline.make_mask_loader(big, mask_threshold)

    def load_shorter_side(path, label, boxes, num_boxes, mask_paths, ignore_path,
                          image_id, seed):
        image = pipeline.decode_rgb(path)
        h, w = tf.shape(image)[0], tf.shape(image)[1]
        resized = shorter_side_resize(image, big, antialias)
        bh, bw = tf.shape(resized)[0], tf.shape(resized)[1]
        ox, oy, do_flip = _offsets_and_flip_hw(seed, s, bh, bw)
        crop = tf.slice(resized, tf.stack([oy, ox, 0]), [s, s, 3])
        mask = has_mask = None
        if with_masks:
            mask, has_mask = load_mask(mask_paths, ignore_path)
            mask = tf.image.resize(mask[..., None], tf.stack([bh, bw]),
                                   method="nearest")[..., 0]
            mask = tf.slice(mask, tf.stack([oy, ox]), [s, s])
        return _element(_to_uint8(crop), h, w, label, boxes, num_boxes, image_id,
                        mask, has_mask, ox, oy, do_flip, s, big, hier, flip,
                        big_hw=(bh, bw))

    if shorter_side:
        return load_shorter_side

    def load(path, label, boxes, num_boxes, mask_paths, ignore_path, image_id, seed):
        ox, oy, do_flip = _offsets_and_flip(seed, s, big)
        if antialias:
            crop, h, w = crop_resize.decode_resized_crop(
                tf.io.read_file(path), big, ox, oy, s, antialias=True
            )
        else:
            image = pipeline.decode_rgb(path)
            h, w = tf.shape(image)[0], tf.shape(image)[1]
            resized = tf.image.resize(image, [big, big], method="bilinear")
            crop = tf.slice(resized, tf.stack([oy, ox, 0]), [s, s, 3])
        mask = has_mask = None
        if with_masks:
            mask, has_mask = load_mask(mask_paths, ignore_path)
            mask = tf.slice(mask, tf.stack([oy, ox]), [s, s])
        return _element(_to_uint8(crop), h, w, label, boxes, num_boxes, image_id,
                        mask, has_mask, ox, oy, do_flip, s, big, hier, flip)

    return load


def make_cached_loaders(size: int, scale: float, flip: bool, hierarchy, mask_threshold,
                        with_masks: bool, antialias: bool = True):
    """(prepare, load) for ``data.train_cache``.

    prepare(path, mask_paths, ignore_path) -> {"image": uint8 [big, big, 3] (the
    whole original resized, as :func:`make_train_loader` resizes it), "size":
    int32 [2] (h, w), "mask"/"has_mask" when with_masks}; load(cached, i,
    record fields..., seed) -> the element of record i from the batched
    ``prepare`` outputs of the whole split: a slice and a flip.
    """
    s = int(size)
    big = _big_side(s, scale)
    hier = tf.constant(pipeline.hierarchy_table(hierarchy))
    load_mask = pipeline.make_mask_loader(big, mask_threshold)

    def prepare(path, mask_paths, ignore_path):
        image = pipeline.decode_rgb(path)
        resized = tf.image.resize(image, [big, big], method="bilinear",
                                  antialias=antialias)
        out = {"image": _to_uint8(resized), "size": tf.shape(image)[:2]}
        if with_masks:
            out["mask"], out["has_mask"] = load_mask(mask_paths, ignore_path)
        return out

    def load(cached, i, path, label, boxes, num_boxes, mask_paths, ignore_path,
             image_id, seed):
        del path, mask_paths, ignore_path  # read once, by prepare
        ox, oy, do_flip = _offsets_and_flip(seed, s, big)
        i = tf.cast(i, tf.int32)
        crop = tf.slice(cached["image"], tf.stack([i, oy, ox, 0]), [1, s, s, 3])[0]
        h, w = cached["size"][i, 0], cached["size"][i, 1]
        mask = has_mask = None
        if with_masks:
            mask = tf.slice(cached["mask"], tf.stack([i, oy, ox]), [1, s, s])[0]
            has_mask = cached["has_mask"][i]
        return _element(crop, h, w, label, boxes, num_boxes, image_id, mask,
                        has_mask, ox, oy, do_flip, s, big, hier, flip)

    return prepare, load


def _index_stream(n: int, seed: int, skip: int) -> tf.data.Dataset:
    """(record index, per-element seed [2]) pairs, endless, the first `skip` dropped."""
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    ds = tf.data.Dataset.zip((epoch_order(n, seed).repeat(), seeds))
    return ds.skip(skip) if skip else ds


def train_dataset(source, split: str, seed: int, scale: float, flip: bool, skip: int = 0):
    """Endless shuffled, augmented, unbatched training elements of a FileSource split.

    A new permutation each pass, a function of ``seed``; the first ``skip``
    elements are dropped as indices, before any file is read (exact resume,
    with ``source.train_deterministic``). With ``source.train_cache`` the
    whole split is decoded and resized once, in file order, before the first
    element (see the module docstring).
    """
    rec = source.validated_records(split)
    fields = pipeline.records_tensors(rec)
    n = len(rec)
    args = (source.image_size, scale, flip, source.hierarchy, source.mask_threshold,
            pipeline.has_any_mask(rec), source.train_resize_antialias)
    shorter_side = source.resize_mode == "shorter_side"
    if shorter_side and source.train_cache:
        raise ValueError(
            "config.data.train_cache=True needs data.resize_mode='square' (the "
            "cache holds big x big images), got resize_mode='shorter_side'"
        )
    parallel = dict(num_parallel_calls=tf.data.AUTOTUNE,
                    deterministic=source.train_deterministic)
    if source.train_cache:
        prepare, load = make_cached_loaders(*args)
        whole = (
            tf.data.Dataset.from_tensor_slices((fields[0], fields[4], fields[5]))
            .map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            .batch(n)  # one element: the split, decoded and resized
        )
        ds = whole.flat_map(
            lambda cached: _index_stream(n, seed, skip).map(
                lambda i, sd: load(cached, i, *[tf.gather(f, i) for f in fields], sd),
                **parallel,
            )
        )
    else:
        loader = make_train_loader(*args, shorter_side=shorter_side)
        ds = _index_stream(n, seed, skip).map(
            lambda i, sd: loader(*[tf.gather(f, i) for f in fields], sd), **parallel
        )
    if not source.validates_images and not source.train_cache:
        # A cached split fails loudly instead: dropping a row would misalign it.
        ds = ds.ignore_errors(log_warning=True)
    return ds
