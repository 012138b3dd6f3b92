"""Every public layer and loss of wsol_keras on fixed numpy inputs, any backend.

Used by tests/test_backends.py: run once in the test process (TensorFlow) and
once in a subprocess with KERAS_BACKEND=jax (where TensorFlow is blocked from
importing), then the outputs are compared. For every case this module records:
  * the outputs on fixed inputs (weights set from a fixed numpy generator);
  * the gradient of sum(output^2) with respect to the first float input (must
    be finite);
  * the outputs after a `.keras` save / load of a model holding the layer (or
    compiled with the loss), which must equal the originals.

    KERAS_BACKEND=jax python tests/backend_cases.py OUT.npz [TMPDIR]
"""

import os
import sys

import numpy as np


def rng(seed):
    return np.random.default_rng(seed)


def fix_weights(layer, seed):
    """Replaces every weight by a fixed draw (initializers differ by backend)."""
    r = rng(seed)
    layer.set_weights(
        [r.normal(0.0, 0.3, w.shape).astype(w.dtype) for w in layer.get_weights()]
    )


def make_cases():
    """name -> (object, inputs dict, run(obj, inputs) -> dict, container, grad input).

    container(obj) returns a keras.Model that carries obj through a .keras file,
    and a function finding obj again in the loaded model.
    """
    import keras

    from wsol_keras import layers as L
    from wsol_keras import losses as LS
    ops = keras.ops
    cases = {}

    def functional(obj, specs, call):
        inputs = {k: keras.Input(s, dtype=d, name=k) for k, (s, d) in specs.items()}
        model = keras.Model(inputs, call(obj, inputs))
        return model, (lambda loaded: loaded.get_layer(obj.name))

    def loss_container(obj):
        inp = keras.Input((3,))
        model = keras.Model(inp, keras.layers.Dense(3)(inp))
        model.compile(optimizer="sgd", loss=obj)
        return model, (lambda loaded: loaded.loss)

    feats = rng(1).uniform(0, 1, (2, 5, 5, 6)).astype("float32")

    cam = L.CAMHead(3, conv_filters=(4,), name="cam_head")
    cam.build(feats.shape)
    fix_weights(cam, 2)
    cases["CAMHead"] = (
        cam,
        {"x": feats},
        lambda o, i: {"maps": o(i["x"])},
        lambda o: functional(o, {"x": ((5, 5, 6), "float32")}, lambda o, t: o(t["x"])),
    )

    # Even sides: where torch's symmetric padding and Keras' "same" differ.
    pool_in = rng(11).uniform(-1, 1, (2, 6, 6, 3)).astype("float32")
    pool = L.PaddedMaxPooling2D(3, strides=2, padding=1, name="padded_pool")
    pool.build(pool_in.shape)
    cases["PaddedMaxPooling2D"] = (
        pool,
        {"x": pool_in},
        lambda o, i: {"pooled": o(i["x"])},
        lambda o: functional(o, {"x": ((6, 6, 3), "float32")}, lambda o, t: o(t["x"])),
    )

    da = L.DivergentActivation(3, num_maps=2, conv_filters=(4,), name="da")
    da.build(feats.shape)
    fix_weights(da, 3)
    cases["DivergentActivation"] = (
        da,
        {"x": feats},
        lambda o, i: {
            **o(i["x"]),
            "localization": L.localization_maps(o(i["x"])["maps"]),
        },
        lambda o: functional(o, {"x": ((5, 5, 6), "float32")}, lambda o, t: o(t["x"])),
    )

    sp_in = rng(4).uniform(0, 1, (2, 4, 5, 6)).astype("float32")
    for walk in ("fixed", "squaring", "tolerance"):
        sp = L.SoftProposal(epsilon=1.2, walk=walk, return_proposal=True, name="sp")
        cases[f"SoftProposal_{walk}"] = (
            sp,
            {"x": sp_in},
            lambda o, i: dict(zip(("v", "m"), o(i["x"]))),
            lambda o: functional(
                o, {"x": ((4, 5, 6), "float32")}, lambda o, t: o(t["x"])
            ),
        )

    gsp = L.GlobalSumPooling2D(name="gsp")
    cases["GlobalSumPooling2D"] = (
        gsp,
        {"x": feats},
        lambda o, i: {"y": o(i["x"])},
        lambda o: functional(o, {"x": ((5, 5, 6), "float32")}, lambda o, t: o(t["x"])),
    )

    # Class maps on a 3x3 grid upsampled to the 6x6 features; values kept away
    # from the threshold so the erase mask cannot flip on round-off.
    ce_feats = rng(5).uniform(0, 1, (2, 6, 6, 4)).astype("float32")
    ce_maps = np.stack(
        [np.tile(np.array([[0, 1, 2], [3, 9, 4], [2, 1, 0]], "float32")[..., None], 3)]
        * 2
    ) * np.array([1, 2, 3], "float32")
    ce = L.ComplementaryErase(delta=0.37, name="erase")
    cases["ComplementaryErase"] = (
        ce,
        {"f": ce_feats, "maps": ce_maps, "labels": np.array([2, 0], "int32")},
        lambda o, i: {
            "erased": o(i["f"], i["maps"], i["labels"], training=True),
            "inference": o(i["f"], i["maps"]),
        },
        lambda o: functional(
            o,
            {
                "f": ((6, 6, 4), "float32"),
                "maps": ((3, 3, 3), "float32"),
                "labels": ((), "int32"),
            },
            lambda o, t: o(t["f"], t["maps"], t["labels"]),
        ),
    )

    level_maps = [
        rng(6).normal(0, 1, (2, 4, 4, 3, 2)).astype("float32"),
        rng(7).normal(0, 1, (2, 2, 2, 2, 3)).astype("float32"),
    ]
    dl = LS.DiscrepancyLoss(weight=0.5, keep_fraction=1.0, seed=1, name="dda")
    cases["DiscrepancyLoss"] = (
        dl,
        {"m0": level_maps[0], "m1": level_maps[1],
         "l0": np.array([2, 0], "int32"), "l1": np.array([1, 1], "int32")},
        lambda o, i: {
            "loss": o([i["m0"], i["m1"]], [i["l0"], i["l1"]]),
            "cosine": LS.pairwise_cosine_similarity(
                LS.gather_target_maps([i["m0"], i["m1"]], [i["l0"], i["l1"]])
            ),
        },
        lambda o: functional(
            o,
            {
                "m0": ((4, 4, 3, 2), "float32"),
                "m1": ((2, 2, 2, 3), "float32"),
                "l0": ((), "int32"),
                "l1": ((), "int32"),
            },
            lambda o, t: o([t["m0"], t["m1"]], [t["l0"], t["l1"]]),
        ),
    )

    images = rng(8).uniform(0, 255, (2, 8, 8, 3)).astype("float32")
    params = {
        "brightness": np.array([0.1, -0.2], "float32"),
        "contrast": np.array([1.2, 0.8], "float32"),
        "saturation": np.array([0.9, 1.3], "float32"),
        "hue": np.array([0.02, -0.03], "float32"),
        "flip": np.array([1.0, 0.0], "float32"),
        "scale": np.array([1.1, 0.9], "float32"),
    }
    vst = LS.VisualStimulusTransform(seed=3, name="vst")

    def run_vst(o, i):
        p = {k: i[k] for k in params}
        back, valid = o.inverse(i["cams"], p)
        return {
            "transformed": o.apply(i["images"], p),
            "back": back,
            "valid": valid,
            "loss": LS.visual_stimulus_tolerance_loss(i["cams"], back, valid),
        }

    cases["VisualStimulusTransform"] = (
        vst,
        # Gradient w.r.t. the CAMs (what L_VST trains): the colour jitter on the
        # input images has none on TF (no RGBToHSV gradient), and needs none.
        {"cams": rng(9).uniform(0, 1, (2, 8, 8, 3)).astype("float32"), "images": images,
         **params},
        run_vst,
        lambda o: functional(
            o, {"images": ((8, 8, 3), "float32")}, lambda o, t: o(t["images"])[0]
        ),
    )

    logits = rng(10).normal(0, 2, (4, 3)).astype("float32")
    labels = np.array([0, 2, 1, 2], "int32")
    ctl = LS.ClassTolerantLoss(k=2, alpha=0.4)
    cases["ClassTolerantLoss"] = (
        ctl,
        {"logits": logits, "labels": labels,
         "cams": rng(11).normal(0, 1, (4, 2, 2, 3)).astype("float32")},
        lambda o, i: {
            "loss": o(i["labels"], i["logits"]),
            "topk": LS.topk_average_cams(i["cams"], i["logits"], 2),
        },
        loss_container,
    )

    adl = L.AttentionDropout(drop_rate=0.75, drop_threshold=0.9, seed=1, name="adl")
    cases["AttentionDropout"] = (
        adl,
        {"x": feats},
        # Both training branches through `select` with the draw fixed (the
        # random draw itself differs by backend), and the inference identity.
        lambda o, i: {
            "drop_branch": o.select(i["x"], 0.5),
            "importance_branch": o.select(i["x"], 0.1),
            "inference": o(i["x"]),
        },
        lambda o: functional(o, {"x": ((5, 5, 6), "float32")}, lambda o, t: o(t["x"])),
    )

    has = L.HideAndSeek(patch_sizes=(4,), hide_prob=1.0, seed=1, name="has")
    cases["HideAndSeek"] = (
        has,
        {"images": images},
        # hide_prob 1 hides every patch: deterministic on every backend.
        lambda o, i: {
            "hidden": o(i["images"], training=True),
            "inference": o(i["images"]),
        },
        lambda o: functional(
            o, {"images": ((8, 8, 3), "float32")}, lambda o, t: o(t["images"])
        ),
    )

    tokens = rng(13).normal(0, 1, (2, 1 + 6, 4)).astype("float32")
    ptm = L.PatchTokensToMap(grid=(2, 3), name="patch_map")
    cases["PatchTokensToMap"] = (
        ptm,
        {"tokens": tokens},
        lambda o, i: {"map": o(i["tokens"])},
        lambda o: functional(
            o, {"tokens": ((7, 4), "float32")}, lambda o, t: o(t["tokens"])
        ),
    )

    so = L.ScaleOffset(scale=[0.5, 1.0, 2.0], offset=[-1.0, 0.0, 1.0], name="scale_offset")
    cases["ScaleOffset"] = (
        so,
        {"images": images},
        lambda o, i: {"y": o(i["images"])},
        lambda o: functional(
            o, {"images": ((8, 8, 3), "float32")}, lambda o, t: o(t["images"])
        ),
    )

    hce = LS.HierarchicalCrossEntropy(level_weights=(0.5, 0.3))
    cases["HierarchicalCrossEntropy"] = (
        hce,
        {"leaf": logits, "parent": rng(12).normal(0, 1, (4, 2)).astype("float32"),
         "y": np.array([[0, 1], [2, 0], [1, 1], [2, 0]], "int32")},
        lambda o, i: {"loss": o(i["y"], [i["leaf"], i["parent"]])},
        loss_container,
    )
    return cases


def first_float(inputs):
    return next(k for k, v in inputs.items() if v.dtype == np.float32)


def gradient(run, obj, inputs):
    """d sum(outputs^2) / d inputs[first float input], on the active backend."""
    import keras

    ops = keras.ops
    key = first_float(inputs)

    def scalar(x):
        outs = run(obj, {**inputs, key: x})
        total = 0.0
        for v in outs.values():
            if keras.backend.standardize_dtype(v.dtype).startswith("float"):
                total = total + ops.sum(ops.square(ops.cast(v, "float32")))
        return total

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return np.asarray(jax.grad(scalar)(inputs[key]))
    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.constant(inputs[key])
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = scalar(x)
        return tape.gradient(y, x).numpy()
    raise ValueError(f"no gradient helper for backend {backend}")


def run_all(tmpdir):
    """{case/output: array} for outputs, gradients and loaded-model outputs."""
    import keras

    results = {}
    for name, (obj, inputs, run, container) in make_cases().items():
        outs = run(obj, inputs)
        for k, v in outs.items():
            results[f"{name}/{k}"] = np.asarray(keras.ops.convert_to_numpy(v))
        results[f"{name}/grad"] = gradient(run, obj, inputs)
        model, find = container(obj)
        path = os.path.join(tmpdir, f"{name}.keras")
        model.save(path)
        loaded = find(keras.saving.load_model(path, safe_mode=True))
        for k, v in run(loaded, inputs).items():
            results[f"{name}/loaded/{k}"] = np.asarray(keras.ops.convert_to_numpy(v))
    return results


if __name__ == "__main__":
    if os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
        # The promise under test: layers and losses need no TensorFlow.
        sys.modules["tensorflow"] = None
    out, tmp = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else os.path.dirname(sys.argv[1])
    results = run_all(tmp)
    np.savez(out + ".tmp.npz", **results)
    os.replace(out + ".tmp.npz", out)
