"""Tests of the DANet pieces: DivergentActivation, DDA (Eq. 4) and HDA (Eq. 3)."""

import itertools

import numpy as np
import pytest
import tensorflow as tf

from layer_test_util import run_layer_test
from wsol_keras.layers.divergent_activation import (
    DivergentActivation,
    localization_maps,
)
from wsol_keras.losses.discrepancy import (
    DiscrepancyLoss,
    discrepancy_loss,
    gather_target_maps,
)
from wsol_keras.losses.hierarchical import (
    HierarchicalCrossEntropy,
    ancestors_table,
    cluster_hierarchy,
    hierarchical_cross_entropy,
    hierarchy_level_labels,
)


def rand(shape, seed, signed=False):
    x = np.random.RandomState(seed).rand(*shape).astype("float32")
    return 2 * x - 1 if signed else x


def np_cos(a, b):
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return a @ b / np.sqrt((a @ a) * (b @ b) + 1e-8)


def np_discrepancy(maps, mode):
    """Eq. 4 averaged over pairs k < k' and images, with loops."""
    per_image = []
    for img in maps:
        m = img.shape[-1]
        sims = [
            np_cos(img[..., i], img[..., j])
            for i, j in itertools.combinations(range(m), 2)
        ]
        if mode == "pair":
            per_image.append(np.mean(np.abs(sims)))
        elif mode == "image":
            per_image.append(abs(np.sum(sims)) / len(sims))
        else:
            per_image.append(np.mean(sims))
    return np.mean(per_image)


def np_ce(logits, labels):
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return -logp[np.arange(len(labels)), labels]


@pytest.mark.parametrize("mode", ["pair", "image", "none"])
def test_cosine_loss_matches_numpy(mode):
    maps = rand((3, 4, 5, 6), 0, signed=True)
    got = float(discrepancy_loss(maps, absolute=mode))
    np.testing.assert_allclose(got, np_discrepancy(maps, mode), rtol=1e-5)


def test_cosine_loss_worked_example():
    # Two orthogonal maps -> 0; identical maps -> 1; opposite maps -> |-1| = 1.
    a = np.zeros((1, 2, 2, 2), "float32")
    a[0, 0, 0, 0] = a[0, 1, 1, 1] = 1.0
    assert float(discrepancy_loss(a)) == pytest.approx(0.0, abs=1e-7)
    b = np.ones((1, 2, 2, 2), "float32")
    assert float(discrepancy_loss(b)) == pytest.approx(1.0, abs=1e-6)
    c = np.stack([np.ones((2, 2)), -np.ones((2, 2))], -1)[None].astype("float32")
    assert float(discrepancy_loss(c, absolute="pair")) == pytest.approx(1.0, abs=1e-6)
    assert float(discrepancy_loss(c, absolute="none")) == pytest.approx(-1.0, abs=1e-6)


def test_head_layout_class_maps_and_logits():
    layer = DivergentActivation(3, num_maps=2, conv_filters=(4,))
    x = rand((2, 5, 5, 3), 1)
    out = layer(x)
    raw = np.asarray(layer.head(x))  # [B, h, w, C*K]
    maps = np.asarray(out["maps"])
    assert maps.shape == (2, 5, 5, 3, 2)
    for c, k in itertools.product(range(3), range(2)):
        np.testing.assert_allclose(maps[..., c, k], raw[..., c * 2 + k], rtol=1e-6)
    np.testing.assert_allclose(
        out["class_maps"], raw.reshape(2, 5, 5, 3, 2).mean(-1), rtol=1e-5
    )
    np.testing.assert_allclose(
        out["logits"], raw.reshape(2, 5, 5, 3, 2).mean((1, 2, 4)), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        localization_maps(out["maps"]), np.maximum(maps, 0).mean(-1), rtol=1e-6
    )


def test_gather_target_maps_selects_and_upsamples():
    fine = rand((2, 4, 4, 3, 2), 2)
    coarse = rand((2, 2, 2, 5, 2), 3)
    labels_f, labels_c = np.array([1, 2]), np.array([4, 0])
    got = np.asarray(gather_target_maps([coarse, fine], [labels_c, labels_f]))
    assert got.shape == (2, 4, 4, 4)
    np.testing.assert_allclose(got[1, ..., 2:], fine[1, :, :, 2, :], rtol=1e-6)
    # A 2x2 -> 4x4 bilinear (half-pixel) resize keeps corners, averages the middle.
    up = got[0, ..., 0]
    src = coarse[0, :, :, 4, 0]
    np.testing.assert_allclose(up[0, 0], src[0, 0], rtol=1e-6)
    np.testing.assert_allclose(
        up[1, 1],
        0.5625 * src[0, 0] + 0.1875 * (src[0, 1] + src[1, 0]) + 0.0625 * src[1, 1],
        rtol=1e-5,
    )


def np_upsample_align_corners(m, n_out):
    """torch F.upsample(mode='bilinear', align_corners=True) of [h, w] -> n_out^2:
    output i samples source (i * (n_in - 1) / (n_out - 1)), loops."""
    n_in = m.shape[0]
    out = np.zeros((n_out, n_out))
    for i in range(n_out):
        for j in range(n_out):
            y, x = i * (n_in - 1) / (n_out - 1), j * (n_in - 1) / (n_out - 1)
            y0, x0 = min(int(y), n_in - 2), min(int(x), n_in - 2)
            dy, dx = y - y0, x - x0
            out[i, j] = (
                (1 - dy) * (1 - dx) * m[y0, x0] + (1 - dy) * dx * m[y0, x0 + 1]
                + dy * (1 - dx) * m[y0 + 1, x0] + dy * dx * m[y0 + 1, x0 + 1]
            )
    return out


def test_dda_as_released_aligns_corners_and_takes_the_image_sum():
    # xuehaolan/DANet vgg_DA.py get_loss: the shallower level's target maps
    # F.upsample(..., align_corners=True) to the finest size, concatenated;
    # calculate_cosineloss: abs(sum over an image's pairs i < j of S), summed
    # over images / (B * M (M - 1) / 2).  Signed maps, so |sum| != sum |S|.
    coarse = rand((2, 3, 3, 2, 2), 7, signed=True)
    fine = rand((2, 5, 5, 3, 2), 8, signed=True)
    lc, lf = np.array([1, 0]), np.array([2, 1])
    want_maps = np.zeros((2, 5, 5, 4))
    for b in range(2):
        for k in range(2):
            want_maps[b, ..., k] = np_upsample_align_corners(coarse[b, :, :, lc[b], k], 5)
        want_maps[b, ..., 2:] = fine[b, :, :, lf[b], :]
    got_maps = np.asarray(gather_target_maps([coarse, fine], [lc, lf], align_corners=True))
    np.testing.assert_allclose(got_maps, want_maps, rtol=1e-5, atol=1e-6)
    total = 0.0
    for b in range(2):
        sims = [np_cos(want_maps[b, ..., i], want_maps[b, ..., j])
                for i, j in itertools.combinations(range(4), 2)]
        total += abs(np.sum(sims))
    want = 0.01 * total / (2 * 4 * 3 / 2)
    loss = DiscrepancyLoss(weight=0.01, keep_fraction=1.0, absolute="image", align_corners=True)
    np.testing.assert_allclose(float(loss([coarse, fine], [lc, lf])), want, rtol=1e-5)
    assert DiscrepancyLoss.from_config(loss.get_config()).align_corners is True


def test_danet_cub_config_uses_the_released_dda():
    from wsol_keras.configs import cub_vgg16_danet

    m = cub_vgg16_danet.get_config().method
    assert (m.dda_absolute, m.dda_align_corners) == ("image", True)


def test_kept_count_and_subset_in_training():
    k = 8
    loss = DiscrepancyLoss(seed=1)
    maps = rand((2, 3, 3, 3 * k), 4)
    kept = np.asarray(loss.select_maps(maps, training=True))
    assert kept.shape == (2, 3, 3, 12)  # int(3K / 2) as the released code
    cols = [
        next(j for j in range(3 * k) if np.array_equal(maps[..., j], kept[..., i]))
        for i in range(12)
    ]
    assert len(set(cols)) == 12  # distinct maps, same subset for all images
    # The SeedGenerator advances: successive steps keep different subsets.
    subsets = set()
    for _ in range(5):
        step = np.asarray(loss.select_maps(maps, training=True))
        subsets.add(
            frozenset(
                next(
                    j
                    for j in range(3 * k)
                    if np.array_equal(maps[..., j], step[..., i])
                )
                for i in range(12)
            )
        )
    assert len(subsets) > 1
    assert loss.select_maps(maps, training=False).shape[-1] == 3 * k


def test_discrepancy_loss_layer_value_at_inference():
    levels = [rand((2, 4, 4, 3, 2), 5, True), rand((2, 4, 4, 6, 2), 6, True)]
    labels = [np.array([0, 2]), np.array([5, 1])]
    layer = DiscrepancyLoss(weight=0.01)
    stacked = np.concatenate(
        [
            levels[0][np.arange(2), :, :, labels[0]],
            levels[1][np.arange(2), :, :, labels[1]],
        ],
        axis=-1,
    )
    expected = 0.01 * np_discrepancy(stacked, "pair")
    np.testing.assert_allclose(
        float(layer(levels, labels, training=False)), expected, rtol=1e-5
    )


def test_hierarchy_labels_leaf_first():
    labels = np.array([3, 7])
    hierarchy = np.array([[1, 0], [2, 1]])
    got = [np.asarray(t) for t in hierarchy_level_labels(labels, hierarchy, 3)]
    np.testing.assert_array_equal(got[0], [3, 7])
    np.testing.assert_array_equal(got[1], [1, 2])
    np.testing.assert_array_equal(got[2], [0, 1])
    with pytest.raises(ValueError, match="hierarchy"):
        hierarchy_level_labels(labels, hierarchy[:, :1], 3)


def test_hierarchical_cross_entropy_matches_numpy():
    logits = [rand((4, 6), 7, True), rand((4, 3), 8, True), rand((4, 2), 9, True)]
    labels = [np.array([5, 0, 2, 3]), np.array([2, 0, 1, 1]), np.array([1, 0, 0, 0])]
    expected = sum(0.5 * np_ce(z, y) for z, y in zip(logits, labels))
    got = np.asarray(hierarchical_cross_entropy(labels, logits))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    loss = HierarchicalCrossEntropy(level_weights=[1.0, 0.5, 0.25])
    y_true = np.stack(labels, axis=1)
    expected_w = np.mean(
        np_ce(logits[0], labels[0])
        + 0.5 * np_ce(logits[1], labels[1])
        + 0.25 * np_ce(logits[2], labels[2])
    )
    np.testing.assert_allclose(float(loss(y_true, logits)), expected_w, rtol=1e-5)
    clone = HierarchicalCrossEntropy.from_config(loss.get_config())
    assert clone.level_weights == [1.0, 0.5, 0.25]


def test_gradient_flows_to_all_three_heads():
    feats = [rand((2, 8, 8, 3), 10), rand((2, 4, 4, 3), 11), rand((2, 4, 4, 3), 12)]
    sizes = [2, 3, 5]  # grandparent, parent, leaf (shallow to deep, as DANet)
    heads = [
        DivergentActivation(c, num_maps=4, conv_filters=(4, 4), name=f"h{i}")
        for i, c in enumerate(sizes)
    ]
    dda = DiscrepancyLoss(seed=3)
    labels = [np.array([1, 0]), np.array([2, 0]), np.array([4, 1])]
    for h, f in zip(heads, feats):
        h(f)
    with tf.GradientTape(persistent=True) as tape:
        outs = [h(f) for h, f in zip(heads, feats)]
        hda = tf.reduce_mean(
            hierarchical_cross_entropy(labels, [o["logits"] for o in outs])
        )
        # All 12 maps (inference mode) so every level is in the DDA term.
        d = dda([o["maps"] for o in outs], labels, training=False)
    for head in heads:
        for g in tape.gradient(hda, head.trainable_variables):
            assert g is not None and np.any(g.numpy())
        g_cls = tape.gradient(d, head.head.classifier.kernel)
        assert g_cls is not None and np.any(g_cls.numpy())


def test_divergent_activation_keras_layer_contract(tmp_path):
    # 3x3 conv to 5 (kernel, bias) + 1x1 conv to 4 classes x 3 maps (kernel, bias).
    run_layer_test(
        DivergentActivation,
        {"num_classes": 4, "num_maps": 3, "conv_filters": (5,)},
        (2, 6, 6, 3),
        tmp_path=tmp_path,
        expected_num_trainable_weights=4,
    )


def test_discrepancy_loss_config_round_trip():
    # DiscrepancyLoss takes lists of per-level maps and labels, outside the
    # shared helper's one-tensor-per-input calls; its config is checked here.
    dda = DiscrepancyLoss(weight=0.02, absolute="image", seed=7)
    assert (
        DiscrepancyLoss.from_config(dda.get_config()).get_config() == dda.get_config()
    )


def test_cluster_hierarchy_groups_similar_classes():
    # Six classes in three tight pairs, pairs in two groups along one axis.
    centres = np.array([[10, 0], [10, 1], [11, 0], [-10, 0], [-10, 1], [-11, 0]], float)
    emb = np.concatenate([centres, np.zeros((6, 1))], axis=1) + np.array([0, 0, 1.0])
    parents = cluster_hierarchy(emb, (2,), seed=0)
    assert len(set(parents[0][:3])) == 1 and len(set(parents[0][3:])) == 1
    assert parents[0][0] != parents[0][3]
    table = ancestors_table([np.array([0, 0, 1, 1, 2]), np.array([1, 1, 0])])
    np.testing.assert_array_equal(table, [[0, 1], [0, 1], [1, 1], [1, 1], [2, 0]])
    with pytest.raises(ValueError, match="decreasing"):
        cluster_hierarchy(emb, (7,))


def test_invalid_arguments():
    with pytest.raises(ValueError, match="num_maps"):
        DivergentActivation(3, num_maps=0)
    with pytest.raises(ValueError, match="keep_fraction"):
        DiscrepancyLoss(keep_fraction=0.0)
    with pytest.raises(ValueError, match="absolute"):
        discrepancy_loss(np.ones((1, 2, 2, 3), "float32"), absolute="abs")
