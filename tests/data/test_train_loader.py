"""Tests for wsol_keras.data.train_loader: one resize of the original, then the crop."""

import os

import cv2
import numpy as np

from wsol_keras import data as wdata
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
