"""In-graph box engine: pure TensorFlow ops (no cv2, no py_function).

Used by the exported SavedModel and TFLite graphs; equal to the reference cv2
path (`wsol_keras.localization.boxes.reference`) on the same quantized map.
"""

import tensorflow as tf

# 3x3 max steps per while-loop iteration of tf_largest_component_box
_TF_POOL_STEPS = 6


def _tf_propagate_max(labels0, mask, step, b, h, w):
    """Spreads the maximum label over `mask`'s connected pixels until stable.

    A few `step` (neighbourhood max) rounds, then a pointer jump (a pixel takes the
    label of the pixel its label points to), repeated until nothing changes;
    checking for convergence only every `_TF_POOL_STEPS` rounds keeps the loop
    overhead down. Labels are 1-based pixel indices (values above h*w mark a
    special class, e.g. "outside"); pixels outside `mask` stay 0.
    """
    hw = h * w
    mask_flat = tf.reshape(mask, [b, hw])

    def body(labels, _):
        new = labels
        for _ in range(_TF_POOL_STEPS):
            new = step(new) * mask
        flat = tf.reshape(new, [b, hw])
        ptr = tf.clip_by_value(flat - 1, 0, hw - 1)
        flat = tf.maximum(flat, tf.gather(flat, ptr, batch_dims=1) * mask_flat)
        new = tf.reshape(flat, [b, h, w])
        return new, tf.reduce_any(tf.not_equal(new, labels))

    out, _ = tf.while_loop(
        lambda labels, changed: changed,
        body,
        (labels0, tf.constant(True)),
        shape_invariants=(tf.TensorShape([None, None, None]), tf.TensorShape([])),
        maximum_iterations=hw,
    )
    return out


def tf_largest_component_box(
    scoremaps, threshold, criterion="area", float64_quantization=True
):
    """Box of the largest 8-connected component of each thresholded map, in-graph.

    Same quantization and cut as the cv2 path: ``img = int(map * 255)``, foreground
    ``img > int(threshold * max(img))``. Components are labelled by iterative label
    propagation in a ``tf.while_loop``: every foreground pixel starts with its own
    index + 1, then repeatedly takes the maximum label of its 3x3 neighbourhood
    (8-connectivity, as the outer borders ``cv2.findContours`` traces; a few steps per
    iteration) followed by a pointer jump (a label is the index of a pixel of the same
    component whose own label can only be larger), until nothing changes.

    Args:
        scoremaps: float [B, H, W] in [0, 1] (or [H, W]).
        threshold: CAM threshold (float or scalar tensor).
        criterion: "area" ranks components by the outer contour area cv2 uses for
            MaxBoxAcc (polygon through the border pixel centres, holes included:
            ``n(Q4) + n(Q3)/2`` over 2x2 quads of the hole-filled component; ties
            broken by pixel count), "pixels" by foreground pixel count.
            "area" is what the cv2 path ranks by (see bench/box_agreement.py).
        float64_quantization: quantize as ``quantize_scoremap`` (exact product in
            float64). False keeps every op in float32 / int32 for converters without
            float64 (TFLite); a float32 value then differs only when ``map * 255``
            lies within half a float32 ulp of an integer.

    Returns:
        float32 [B, 4] xyxy boxes in the reference convention ``(x0, y0,
        min(x1 + 1, W - 1), min(y1 + 1, H - 1))``; ``[0, 0, 0, 0]`` when the
        foreground is empty.
    """
    if criterion not in ("area", "pixels"):
        raise ValueError(f"criterion must be 'area' or 'pixels', got {criterion!r}")
    maps = tf.convert_to_tensor(scoremaps)
    if not maps.dtype.is_floating:
        maps = tf.cast(maps, tf.float32)
    if maps.shape.rank == 2:
        maps = maps[None]
    shape = tf.shape(maps)
    b, h, w = shape[0], shape[1], shape[2]
    hw = h * w
    if float64_quantization:  # float64 product and truncation, as quantize_scoremap
        img = tf.cast(tf.cast(maps, tf.float64) * 255.0, tf.int32)
    else:
        img = tf.cast(tf.cast(maps, tf.float32) * 255.0, tf.int32)
    img_max = tf.reduce_max(img, axis=[1, 2], keepdims=True)
    ft = tf.float64 if float64_quantization else tf.float32
    level = tf.cast(tf.floor(tf.cast(threshold, ft) * tf.cast(img_max, ft)), tf.int32)
    fg = img > level
    fgi = tf.cast(fg, tf.int32)
    if criterion == "area":
        # cv2's outer contour area includes the component's holes: label the
        # hole-filled foreground (background not 4-connected to the image border joins
        # its enclosing component). Filling does not move a component's box, and
        # components nested in a hole never win (they lie inside the encloser).
        bg = 1 - fgi
        rr, cc = tf.range(h)[:, None], tf.range(w)[None, :]
        border = (rr == 0) | (rr == h - 1) | (cc == 0) | (cc == w - 1)
        # label background pixels by index, border ones by hw + 1 (outside); max
        # propagation over 4-neighbours plus pointer jumps spreads "outside" quickly
        idx0 = tf.reshape(tf.range(1, hw + 1), [1, h, w])
        out0 = bg * tf.where(border[None], hw + 1, idx0)

        def cross(x):  # 4-neighbourhood max (background is 4-connected)
            p = tf.pad(x, [[0, 0], [1, 1], [1, 1]])
            return tf.maximum(
                tf.maximum(
                    tf.maximum(p[:, 1:-1, :-2], p[:, 1:-1, 2:]),
                    tf.maximum(p[:, :-2, 1:-1], p[:, 2:, 1:-1]),
                ),
                x,
            )

        out_lab = _tf_propagate_max(out0, bg, cross, b, h, w)
        outside = tf.cast(tf.equal(out_lab, hw + 1), tf.int32)
        solid = 1 - outside
    else:
        solid = fgi
    labels0 = solid * tf.reshape(tf.range(1, hw + 1), [1, h, w])

    def dilate3x3(x):
        # separable 3x3 max with zero padding (labels are >= 0); cheaper than
        # max_pool2d on a single channel
        p = tf.pad(x, [[0, 0], [0, 0], [1, 1]])
        x = tf.maximum(tf.maximum(p[:, :, :-2], p[:, :, 1:-1]), p[:, :, 2:])
        p = tf.pad(x, [[0, 0], [1, 1], [0, 0]])
        return tf.maximum(tf.maximum(p[:, :-2], p[:, 1:-1]), p[:, 2:])

    lab = _tf_propagate_max(
        labels0, solid, dilate3x3, b, h, w
    )  # [B, H, W], 0 background
    offsets = tf.reshape(tf.range(b) * (hw + 1), [b, 1])
    nseg = b * (hw + 1)
    pix = tf.math.unsorted_segment_sum(
        tf.ones([b, hw], tf.int64), tf.reshape(lab, [b, hw]) + offsets, nseg
    )
    if criterion == "area":
        q = (
            solid[:, :-1, :-1]
            + solid[:, :-1, 1:]
            + solid[:, 1:, :-1]
            + solid[:, 1:, 1:]
        )
        weight2 = tf.cast(tf.maximum(q - 2, 0), tf.int64)  # 4 -> 2 (=1), 3 -> 1 (=1/2)
        qlab = tf.maximum(
            tf.maximum(lab[:, :-1, :-1], lab[:, :-1, 1:]),
            tf.maximum(lab[:, 1:, :-1], lab[:, 1:, 1:]),
        )
        nq = (h - 1) * (w - 1)
        area2 = tf.math.unsorted_segment_sum(
            tf.reshape(weight2, [b, nq]), tf.reshape(qlab, [b, nq]) + offsets, nseg
        )
        key = area2 * tf.cast(hw + 1, tf.int64) + pix
    else:
        key = pix
    key = tf.reshape(key, [b, hw + 1])
    key = tf.concat([tf.zeros([b, 1], tf.int64), key[:, 1:]], axis=1)  # drop background
    best = tf.cast(tf.argmax(key, axis=1), tf.int32)
    mask = tf.logical_and(tf.equal(lab, best[:, None, None]), fg)
    has = tf.reduce_any(mask, axis=[1, 2])
    cols = tf.reduce_any(mask, axis=1)  # [B, W]
    rows = tf.reduce_any(mask, axis=2)  # [B, H]
    x0 = tf.argmax(tf.cast(cols, tf.int32), axis=1, output_type=tf.int32)
    x1 = (
        w
        - 1
        - tf.argmax(tf.cast(cols[:, ::-1], tf.int32), axis=1, output_type=tf.int32)
    )
    y0 = tf.argmax(tf.cast(rows, tf.int32), axis=1, output_type=tf.int32)
    y1 = (
        h
        - 1
        - tf.argmax(tf.cast(rows[:, ::-1], tf.int32), axis=1, output_type=tf.int32)
    )
    box = tf.stack(
        [x0, y0, tf.minimum(x1 + 1, w - 1), tf.minimum(y1 + 1, h - 1)], axis=1
    )
    box = tf.where(has[:, None], box, tf.zeros_like(box))
    return tf.cast(box, tf.float32)
