"""Tests for wsol_keras.data.train_loader: one resize of the original, then the crop."""

import os

import cv2
import numpy as np
import tensorflow as tf

from wsol_keras import data as wdata
from wsol_keras.data import crop_resize
from wsol_keras.data import train_loader

S, BIG, W, H = 8, 12, 24, 18  # scale 1.5: the original 24 x 18 -> 12 x 12 -> crop 8


def _lines(path, lines):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def _aa_bilinear_weights(n_in, n_out, antialias=True):
    """[n_out, n_in] weights of an antialiased bilinear resize (PIL's definition:
    triangle filter widened by the downscale factor, half-pixel centres,
    normalized per output pixel); antialias=False: the plain 2-tap triangle."""
    scale = n_in / n_out
    support = max(scale, 1.0) if antialias else 1.0
    w = np.zeros((n_out, n_in))
    for o in range(n_out):
        centre = (o + 0.5) * scale
        for i in range(n_in):
            w[o, i] = max(0.0, 1.0 - abs(i + 0.5 - centre) / support)
        w[o] /= w[o].sum()
    return w


def _source(tmp_path, rgb, masks=None, **data):
    root, meta = tmp_path / "img", tmp_path / "meta"
    os.makedirs(root / "a", exist_ok=True)
    assert cv2.imwrite(str(root / "a" / "x.png"), rgb[..., ::-1])
    _lines(meta / "train" / "image_ids.txt", ["a/x.png"])
    _lines(meta / "train" / "class_labels.txt", ["a/x.png,0"])
    if masks is None:
        _lines(meta / "train" / "localization.txt", ["a/x.png,4,3,15,11"])
    else:
        assert cv2.imwrite(str(root / "a" / "m.png"), masks)
        _lines(meta / "train" / "localization.txt", ["a/x.png,a/m.png,"])
    c = wdata.default_data_config()
    c.update(name="wsol_metadata", root=str(root), metadata=str(meta), image_size=S)
    c.update(data)
    return wdata.get_source(c)


def _train_elements(src, n, flip=False):
    ds = src.train_dataset("train", seed=3, scale=BIG / S, flip=flip).repeat()
    return list(ds.take(n).as_numpy_iterator())


def test_training_image_is_one_resize_of_the_original_then_crop(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (H, W, 3)).astype(np.uint8)
    src = _source(tmp_path, rgb)
    ref = np.einsum(
        "yi,ijc,xj->yxc", _aa_bilinear_weights(H, BIG), rgb.astype(np.float64),
        _aa_bilinear_weights(W, BIG),
    )
    # The blurring path this replaces: original -> S x S -> big x big -> crop.
    small = np.einsum(
        "yi,ijc,xj->yxc", _aa_bilinear_weights(H, S), rgb.astype(np.float64),
        _aa_bilinear_weights(W, S),
    ).round()
    offsets = set()
    for e in _train_elements(src, 12):
        img = e["image"].astype(np.float64)
        diffs = {
            (ox, oy): np.abs(img - ref[oy : oy + S, ox : ox + S]).max()
            for ox in range(BIG - S + 1) for oy in range(BIG - S + 1)
        }
        (ox, oy), best = min(diffs.items(), key=lambda kv: kv[1])
        assert best <= 0.51, best  # rounding of the float result only
        offsets.add((ox, oy))
        # box 4,3,15,11 in the original -> x * 12/24, y * 12/18, minus the offset
        expect = np.array([4 * 0.5, 3 * 12 / 18, 15 * 0.5, 11 * 12 / 18])
        expect = np.clip(expect - [ox, oy, ox, oy], 0, S - 1)
        assert e["num_boxes"] == 1
        np.testing.assert_allclose(e["boxes"][0], expect, atol=1e-4)
        assert not e["has_mask"] and not e["mask"].any()
        np.testing.assert_array_equal(e["original_size"], [H, W])
        up = np.einsum(  # bilinear S -> big without antialias (upscale)
            "yi,ijc,xj->yxc", _aa_bilinear_weights(S, BIG), small,
            _aa_bilinear_weights(S, BIG),
        )
        assert np.abs(img - up[oy : oy + S, ox : ox + S]).max() > 5
    assert len(offsets) > 1  # the crop is random


def test_plain_bilinear_option_matches_two_tap_reference(tmp_path):
    rgb = np.random.default_rng(1).integers(0, 256, (H, W, 3)).astype(np.uint8)
    src = _source(tmp_path, rgb, train_resize_antialias=False)
    ref = np.einsum(
        "yi,ijc,xj->yxc", _aa_bilinear_weights(H, BIG, False),
        rgb.astype(np.float64), _aa_bilinear_weights(W, BIG, False),
    )
    for e in _train_elements(src, 4):
        img = e["image"].astype(np.float64)
        best = min(
            np.abs(img - ref[oy : oy + S, ox : ox + S]).max()
            for ox in range(BIG - S + 1) for oy in range(BIG - S + 1)
        )
        assert best <= 0.51, best


def test_mask_and_box_cropped_and_flipped_together(tmp_path):
    rgb = np.full((H, W, 3), 100, np.uint8)
    mask = np.zeros((H, W), np.uint8)
    mask[6:12, 8:20] = 255  # rows 6..11, cols 8..19 of the original
    src = _source(tmp_path, rgb, masks=mask)
    seen_flip = set()
    for e in _train_elements(src, 16, flip=True):
        assert e["has_mask"]
        ys, xs = np.nonzero(e["mask"] == 1)
        assert len(xs)
        # nearest resize to 12 x 12, source pixel floor((o + 0.5) * in / out):
        # rows 6..11 of 18 -> 4..7, cols 8..19 of 24 -> 4..9
        cols = set(range(4, 10))
        rows = set(range(4, 8))
        got_rows = set(ys.tolist())
        crop_cols = set(xs.tolist())
        # consistent with some offset and optional mirror
        ok = False
        for ox in range(BIG - S + 1):
            for oy in range(BIG - S + 1):
                want_r = {r - oy for r in rows if 0 <= r - oy < S}
                want_c = {c - ox for c in cols if 0 <= c - ox < S}
                for flipped in (False, True):
                    wc = {S - 1 - c for c in want_c} if flipped else want_c
                    if want_r == got_rows and wc == crop_cols:
                        ok = True
                        seen_flip.add(flipped)
        assert ok, (sorted(got_rows), sorted(crop_cols))
    assert seen_flip == {False, True}


def test_epoch_order_is_a_new_permutation_each_epoch():
    ds = train_loader.epoch_order(50, seed=1).repeat(3)
    got = [int(i) for i in ds.as_numpy_iterator()]
    epochs = [got[:50], got[50:100], got[100:]]
    for e in epochs:
        assert sorted(e) == list(range(50))
    assert epochs[0] != epochs[1] != epochs[2]


# ----------------------------------------------------- crop-then-resize of JPEGs
def _jpeg(path, h, w, seed):
    """A smooth random colour field with noise, 4:2:0 JPEG (cv2's default)."""
    rng = np.random.default_rng(seed)
    low = rng.uniform(0, 255, (3, 4, 3)).astype(np.float32)
    img = cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC)
    img = np.clip(img + rng.normal(0, 20, img.shape), 0, 255).astype(np.uint8)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    assert cv2.imwrite(str(path), img, [cv2.IMWRITE_JPEG_QUALITY, 90])


def test_jpeg_window_crop_equals_resize_then_crop(tmp_path):
    # 96 x 72 -> 40 x 40 (scale 2.4 / 1.8, antialias widens the filter), crop 32:
    # every offset, so windows start inside the image (the decoder's chroma
    # upsampling differs in a window's edge columns) and at its edges.
    h, w, big, s = 72, 96, 40, 32
    _jpeg(tmp_path / "x.jpg", h, w, seed=4)
    contents = tf.io.read_file(str(tmp_path / "x.jpg"))
    full = tf.io.decode_jpeg(contents, channels=3).numpy().astype(np.float64)
    ref = np.einsum(
        "yi,ijc,xj->yxc", _aa_bilinear_weights(h, big), full,
        _aa_bilinear_weights(w, big),
    )
    for oy in range(big - s + 1):
        for ox in range(big - s + 1):
            crop, hh, ww = crop_resize.decode_resized_crop(contents, big, ox, oy, s)
            assert (int(hh), int(ww)) == (h, w)
            np.testing.assert_allclose(
                crop.numpy(), ref[oy : oy + s, ox : ox + s], atol=2e-3,
                err_msg=f"offset ({ox}, {oy})",
            )


def test_crop_window_covers_the_filter_support():
    # 500 -> 256: a triangle of radius 500/256 input pixels around each output
    # centre (o + 0.5) * 500 / 256; outputs 10..233 read columns 17..456,
    # and the window adds 2 pixels of margin each side.
    y0, x0, wh, ww = crop_resize.crop_window(375, 500, 256, 10, 0, 224).numpy()
    lo = (10 + 0.5) * 500 / 256 - 500 / 256 - 0.5  # first centre inside support
    hi = (233 + 0.5) * 500 / 256 + 500 / 256 - 0.5
    assert x0 <= np.ceil(lo) - 2 and x0 + ww - 1 >= np.floor(hi) + 2
    assert x0 >= np.ceil(lo) - 4 and x0 + ww - 1 <= np.floor(hi) + 4
    assert y0 == 0 and wh <= 375


# ------------------------------------------------------------ cache and resume
def _jpeg_source(tmp_path, n=5, masks=False, **data):
    root, meta = tmp_path / "img", tmp_path / "meta"
    ids, labels, loc = [], [], []
    for i in range(n):
        _jpeg(root / "a" / f"x{i}.jpg", H + 2 * i, W + 3 * i, seed=10 + i)
        ids.append(f"a/x{i}.jpg")
        labels.append(f"a/x{i}.jpg,{i % 2}")
        if masks:
            m = np.zeros((H + 2 * i, W + 3 * i), np.uint8)
            m[3:12, 5 + i : 15 + i] = 255
            assert cv2.imwrite(str(root / "a" / f"m{i}.png"), m)
            loc.append(f"a/x{i}.jpg,a/m{i}.png,")
        else:
            loc.append(f"a/x{i}.jpg,{i},3,{15 + i},11")
    _lines(meta / "train" / "image_ids.txt", ids)
    _lines(meta / "train" / "class_labels.txt", labels)
    _lines(meta / "train" / "localization.txt", loc)
    c = wdata.default_data_config()
    c.update(name="wsol_metadata", root=str(root), metadata=str(meta), image_size=S)
    c.update(data)
    return wdata.get_source(c)


def _take(src, n, skip=0):
    ds = src.train_dataset("train", seed=5, scale=BIG / S, flip=True, skip=skip)
    return list(ds.take(n).as_numpy_iterator())


def _assert_same_elements(got, want, image_atol):
    assert len(got) == len(want)
    for k, (a, b) in enumerate(zip(got, want)):
        assert a.keys() == b.keys()
        for key in a:
            if key == "image":
                diff = np.abs(a[key].astype(int) - b[key].astype(int))
                assert diff.max() <= image_atol, (k, diff.max())
            else:
                np.testing.assert_array_equal(a[key], b[key], err_msg=f"{k} {key}")


def test_cache_yields_the_same_elements_as_decoding(tmp_path):
    plain = _take(_jpeg_source(tmp_path / "p", masks=True), 12)
    cached = _take(_jpeg_source(tmp_path / "c", masks=True, train_cache=True), 12)
    ids = {f"a/x{i}.jpg".encode() for i in range(5)}
    assert {e["image_id"] for e in plain[:5]} == ids  # one epoch: each image once
    assert all(e["has_mask"] for e in plain) and any(e["mask"].any() for e in plain)
    # Resize-then-crop from the cache vs the crop's window: float rounding of
    # the sample positions may move a pixel across .5, nothing more.
    _assert_same_elements(cached, plain, image_atol=1)
    diff = sum(
        int((a["image"] != b["image"]).sum()) for a, b in zip(cached, plain)
    )
    assert diff <= 0.01 * 12 * S * S * 3, diff


def test_skip_drops_elements_before_decoding_and_resume_is_exact(tmp_path):
    for cache in (False, True):
        src = _jpeg_source(tmp_path / str(cache), train_cache=cache)
        whole = _take(src, 14)
        again = _take(src, 14)
        resumed = _take(src, 7, skip=7)
        _assert_same_elements(again, whole, image_atol=0)
        _assert_same_elements(resumed, whole[7:], image_atol=0)


def test_order_is_the_drawn_order_even_past_a_slow_image(tmp_path):
    # Image 0 is ~2,000x the pixels of the others: with elements leaving the
    # parallel map as they finish (the previous default, deterministic=False)
    # it is overtaken and batches depend on timing, so a resumed run (which
    # skips indices) would not see the uninterrupted run's batches.
    src = _jpeg_source(tmp_path, n=6)  # default data.train_deterministic
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (900, 1200, 3)).astype(np.uint8)
    assert cv2.imwrite(str(tmp_path / "img" / "a" / "x0.jpg"), noise)
    order = train_loader.epoch_order(6, seed=5).repeat().take(12)
    want = [f"a/x{int(i)}.jpg".encode() for i in order.as_numpy_iterator()]
    got = [e["image_id"] for e in _take(src, 12)]
    assert got == want


def test_shorter_side_resize_keeps_the_aspect_ratio(tmp_path):
    # ACoL's released loader (utils/LoadData.py): transforms.Resize(256), an
    # int size: the shorter side to 256, the longer int(256 * long / short)
    # (utils/transforms/functional.py resize), then RandomCrop(224).  Here the
    # 24 x 18 original (W x H) -> 16 x 12 (12 * 24 / 18 = 16), crop 8.
    rgb = np.random.default_rng(2).integers(0, 256, (H, W, 3)).astype(np.uint8)
    src = _source(tmp_path, rgb, resize_mode="shorter_side")
    bh, bw = BIG, 16
    ref = np.einsum(
        "yi,ijc,xj->yxc", _aa_bilinear_weights(H, bh), rgb.astype(np.float64),
        _aa_bilinear_weights(W, bw),
    )
    offsets = set()
    for e in _train_elements(src, 16):
        img = e["image"].astype(np.float64)
        diffs = {
            (ox, oy): np.abs(img - ref[oy : oy + S, ox : ox + S]).max()
            for ox in range(bw - S + 1) for oy in range(bh - S + 1)
        }
        (ox, oy), best = min(diffs.items(), key=lambda kv: kv[1])
        assert best <= 0.51, best
        offsets.add(ox)
        # box 4,3,15,11 -> x * 16/24, y * 12/18, minus the offset
        expect = np.array([4 * 16 / 24, 3 * 12 / 18, 15 * 16 / 24, 11 * 12 / 18])
        expect = np.clip(expect - [ox, oy, ox, oy], 0, S - 1)
        np.testing.assert_allclose(e["boxes"][0], expect, atol=1e-4)
    assert max(offsets) > BIG - S  # x offsets reach past a square 12 x 12 resize


def test_shorter_side_ten_crops_cut_the_aspect_kept_resize():
    from wsol_keras.evaluation import paper_protocols

    # 24 x 18 (W x H) with shorter side 12 -> 16 x 12; torchvision TenCrop(8).
    rgb = np.random.default_rng(3).integers(0, 256, (H, W, 3)).astype(np.uint8)
    big = train_loader.shorter_side_resize(tf.constant(rgb), 12, antialias=True)
    assert tuple(big.shape) == (12, 16, 3)
    ref = np.einsum(
        "yi,ijc,xj->yxc", _aa_bilinear_weights(H, 12), rgb.astype(np.float64),
        _aa_bilinear_weights(W, 16),
    )
    assert np.abs(big.numpy().astype(np.float64) - ref).max() <= 0.51
    crops = paper_protocols.ten_crop(big.numpy(), 8)
    np.testing.assert_array_equal(crops[1], big.numpy()[0:8, 8:16])  # top right
    np.testing.assert_array_equal(crops[4], big.numpy()[2:10, 4:12])  # center
