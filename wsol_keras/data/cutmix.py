"""CutMix (Yun et al., ICCV 2019) as a tf.data batch augmentation.

Paper: "CutMix: Regularization Strategy to Train Strong Classifiers with
Localizable Features" (Yun et al.), Sec. 3.1, Eq. 1: x~ = M * x_A + (1 - M) *
x_B, y~ = lam y_A + (1 - lam) y_B, with lam ~ Beta(alpha, alpha) (alpha = 1:
uniform) and the box B = (r_x, r_y, r_w, r_h) drawn with r_x ~ U(0, W),
r_y ~ U(0, H), r_w = W sqrt(1 - lam), r_h = H sqrt(1 - lam) (Eq. 2), the
pasted image x_B being another image of the batch (a random permutation);
lam is then recomputed as the exact area ratio of the box after clipping it
to the image.

As released (clovaai/wsolevaluation wsol/method/cutmix.py and main.py
`_wsol_training`, from clovaai/CutMix-PyTorch): one lam, one box and one
permutation per batch; the batch is mixed when `cutmix_prob` > a uniform
draw (and beta > 0); the box is [c - cut // 2, c + cut // 2) along each axis
with cut = int(size * sqrt(1 - lam)) and center c = randint(size), clipped to
the image; the loss is lam CE(logits, y_A) + (1 - lam) CE(logits, y_B), the
same as the soft-label cross-entropy of `mixed_one_hot`.

Randomness here is stateless, a function of (seed, batch index), so a
resumed run mixes the batches the uninterrupted run mixed.
"""

import tensorflow as tf


def _beta(seed, beta):
    """One Beta(beta, beta) draw as g1 / (g1 + g2), g_i ~ Gamma(beta)."""
    seeds = tf.random.experimental.stateless_split(seed, 2)
    g1 = tf.random.stateless_gamma((), seeds[0], alpha=beta)
    g2 = tf.random.stateless_gamma((), seeds[1], alpha=beta)
    return g1 / (g1 + g2)


def cut_box(height, width, lam, center_row, center_col):
    """The released `rand_bbox` box: (row1, row2, col1, col2), ints, clipped.

    Args:
        height: image height H (int32 scalar).
        width: image width W.
        lam: the drawn lambda (float32 scalar); the box covers about 1 - lam.
        center_row: in [0, H).
        center_col: in [0, W).
    """
    cut_rat = tf.sqrt(1.0 - lam)
    cut_h = tf.cast(tf.cast(height, tf.float32) * cut_rat, tf.int32)
    cut_w = tf.cast(tf.cast(width, tf.float32) * cut_rat, tf.int32)
    row1 = tf.clip_by_value(center_row - cut_h // 2, 0, height)
    row2 = tf.clip_by_value(center_row + cut_h // 2, 0, height)
    col1 = tf.clip_by_value(center_col - cut_w // 2, 0, width)
    col2 = tf.clip_by_value(center_col + cut_w // 2, 0, width)
    return row1, row2, col1, col2


def cutmix_batch(images, labels, seed, beta=1.0, prob=1.0):
    """Mixes one batch: (images, labels_a, labels_b, lam).

    Args:
        images: [B, H, W, C] float batch.
        labels: int [B] class ids (y_A).
        seed: int32 [2] stateless seed, e.g. (run seed, batch index).
        beta: alpha of Beta(alpha, alpha) (wsolevaluation `--cutmix_beta` 1.0);
            <= 0 turns mixing off (released condition).
        prob: probability that the batch is mixed (`--cutmix_prob` 1.0).

    Returns:
        images with the box pasted from the permuted batch; labels_a (=
        labels); labels_b (the permuted labels); lam, float32 [B] (the same
        value for every image), the fraction of each image left unchanged:
        1 - box area / (H W) after clipping; 1 when the batch is not mixed.
    """
    seed = tf.cast(tf.convert_to_tensor(seed), tf.int32)
    s = tf.random.experimental.stateless_split(seed, 5)
    shape = tf.shape(images)
    batch, height, width = shape[0], shape[1], shape[2]
    labels = tf.convert_to_tensor(labels)
    mix = tf.logical_and(
        tf.random.stateless_uniform((), s[0]) < prob, tf.constant(beta > 0)
    )
    lam = _beta(s[1], max(float(beta), 1e-6))
    perm = tf.argsort(tf.random.stateless_uniform((batch,), s[2]))
    center_row = tf.random.stateless_uniform((), s[3], 0, height, dtype=tf.int32)
    center_col = tf.random.stateless_uniform((), s[4], 0, width, dtype=tf.int32)
    row1, row2, col1, col2 = cut_box(height, width, lam, center_row, center_col)
    rows = tf.range(height)
    cols = tf.range(width)
    in_rows = tf.logical_and(rows >= row1, rows < row2)
    in_cols = tf.logical_and(cols >= col1, cols < col2)
    box = tf.logical_and(in_rows[:, None], in_cols[None, :])
    box = tf.logical_and(box, mix)[None, :, :, None]
    mixed = tf.where(box, tf.gather(images, perm), images)
    area = tf.cast((row2 - row1) * (col2 - col1), tf.float32)
    exact = 1.0 - area / tf.cast(height * width, tf.float32)
    lam = tf.where(mix, exact, 1.0)
    labels_b = tf.where(mix, tf.gather(labels, perm), labels)
    return mixed, labels, labels_b, tf.fill([batch], lam)


def mixed_one_hot(labels_a, labels_b, lam, num_classes):
    """Soft targets lam one_hot(y_A) + (1 - lam) one_hot(y_B) (Eq. 1), [B, C],
    for a model trained with categorical cross-entropy."""
    lam = tf.cast(lam, tf.float32)[:, None]
    return lam * tf.one_hot(labels_a, num_classes) + (1.0 - lam) * tf.one_hot(
        labels_b, num_classes
    )
