"""Dual-Gradients Localization (DGL): training-free maps on any layer.

Reference: Tan et al., "Dual-Gradients Localization Framework for Weakly
Supervised Object Localization", ACM MM 2020, Sec. 3.3-3.5.

For a layer with activations ``S`` ``[B, H, W, K]`` and target class ``c``:

* Pixel-level class selection (Eq. 5): ``M_c = sum_k (d l_c / d S_k) * S_k``
  with ``l`` the logits. On the last conv layer of conv -> GAP -> dense the
  gradient is ``w_c / (H*W)`` at every pixel, so ``M_c`` is the CAM of Eq. 2
  divided by ``H*W`` (the proof of Sec. 3.3, up to this constant).
* Class-aware enhanced maps (Eq. 7): ``A = l2(S) - l2(g)`` with
  ``g = d cost(l, alpha * onehot_c) / d S``, cost = softmax cross-entropy,
  each ``l2`` normalizing jointly over H, W, K per image.
* Final map (Eq. 8): ``M_bar_c = sum_k (d l_c / d S_k) * A_k``.

About ``alpha`` (official behaviour, reproduced on purpose): the authors'
TensorFlow code differentiates ``tf.nn.softmax_cross_entropy_with_logits``,
whose fused kernel returns ``softmax(l) - labels`` as the gradient w.r.t. the
logits even when the labels do not sum to one. With ``labels = alpha*onehot``
that is ``softmax(l) - alpha * onehot_c``, which is what makes ``alpha`` matter.
The exact gradient of ``-alpha * log p_c`` would be ``alpha * (softmax(l) -
onehot_c)`` and ``alpha`` would cancel in the l2 normalization of Eq. 7. Here
``g`` is computed as the vector-Jacobian product of the logits with the cotangent
``softmax(l) - alpha * onehot_c``, i.e. exactly the official fused gradient.

Grad-CAM (Selvaraju et al. 2017) comes from the same tape as a baseline:
``relu(sum_k mean_hw(d l_c / d S_k) * S_k)``, and so do the rest of the CAM
family (`wsol_keras.localization.cam_family`): ``gradcam++``, ``xgradcam``,
``layercam`` and ``hirescam`` from ``S`` and ``d l_c / d S``; ``eigencam``
from ``S`` alone (no backward pass); ``scorecam`` from ``S`` and N more
forward passes on masked images (no backward pass).

The class here needs no change to the model: it records the requested layers'
outputs while the model runs under one ``tf.GradientTape`` (by wrapping the
layers' ``call`` for the duration of the trace) and takes vector-Jacobian
products of the logits w.r.t. them, batched, inside a ``tf.function``.
The layer sweep of DGL Table 1 is `wsol_keras.evaluation.layer_sweep` (it goes through
`wsol_keras.localization.maps`, which builds on this module).
"""

import contextlib

import keras
import numpy as np
import tensorflow as tf

from wsol_keras.localization import cam_family
from wsol_keras.localization import layer_paths as layer_paths_lib

__all__ = [
    "DualGradient",
    "GRADIENT_FREE_METHODS",
    "METHODS_DGL",
    "resolve_layer",
]

# Every map method on a named layer (the list `wsol_keras.localization.maps`
# and the config checks take their names from).
METHODS_DGL = (
    "dgl", "pcs", "gradcam", "gradcam++", "xgradcam", "layercam", "hirescam",
    "eigencam", "scorecam",
)
# Those that need no backward pass (exportable without gradient ops).
GRADIENT_FREE_METHODS = ("eigencam", "scorecam")
_FAMILY = {
    "gradcam++": cam_family.gradcam_plus_plus,
    "xgradcam": cam_family.xgradcam,
    "layercam": cam_family.layercam,
    "hirescam": cam_family.hirescam,
}


def resolve_layer(model, path):
    """Finds a (possibly nested) layer by a ``/``-separated path.

    Each component matches a sub-layer's ``name`` (``model.get_layer``) or,
    for subclassed models, an attribute holding a layer (``"backbone"`` for
    ``WSOLModel.backbone``). Example: ``"backbone/block5_conv3"``.

    Args:
        model: a Keras model or layer.
        path: layer path.

    Returns:
        The layer.

    Raises:
        ValueError: naming the component that was not found and the available
            sub-layer names.
    """
    current = model
    for part in path.split("/"):
        found = None
        for layer in getattr(current, "layers", None) or []:
            if layer.name == part:
                found = layer
                break
        if found is None:
            attr = getattr(current, part, None)
            if isinstance(attr, keras.layers.Layer):
                found = attr
        if found is None:
            usable = [p.path for p in layer_paths_lib.layer_paths(model) if p.dgl]
            shown = usable[-12:]  # the deepest ones: the usual DGL choices
            close = [p for p in usable if p.endswith("/" + path)]
            raise ValueError(
                f"DualGradient: layer path {path!r}: no sub-layer {part!r} in "
                f"{current.name!r}."
                + (f" Did you mean {close[0]!r}?" if len(close) == 1 else "")
                + " Paths with spatial maps"
                + (
                    f" (last {len(shown)} of {len(usable)})"
                    if len(shown) < len(usable)
                    else ""
                )
                + f": {', '.join(shown)}; all paths: wsol-eval --workdir=W --list_layers"
            )
        current = found
    return current


def _is_softmax(fn):
    if fn is None:
        return False
    if fn is keras.activations.softmax:
        return True
    return getattr(fn, "__name__", "") == "softmax"


class _Recorder:
    """Wraps layers' ``call`` to record their inputs and outputs."""

    def __init__(self):
        self.outputs = {}
        self.inputs = {}

    @contextlib.contextmanager
    def watch(self, layers):
        patched = []
        try:
            for key, layer in layers.items():
                original = layer.call

                def wrapped(*args, _key=key, _original=original, **kwargs):
                    out = _original(*args, **kwargs)
                    # A layer called several times: the last call wins.
                    self.inputs[_key] = args[0] if args else None
                    self.outputs[_key] = out
                    return out

                had_instance_attr = "call" in layer.__dict__
                layer.call = wrapped
                patched.append((layer, original, had_instance_attr))
            yield self
        finally:
            for layer, original, had_instance_attr in reversed(patched):
                if had_instance_attr:
                    layer.call = original
                else:
                    del layer.call


class DualGradient:
    """DGL maps (Eq. 5, 7, 8) and Grad-CAM on layers of a Keras classifier.

    Works on:

    * models returning logits directly;
    * models returning a dict with ``output_key`` (``"logits"``), e.g. the
      package's ``WSOLModel`` subclasses;
    * ``keras.applications`` models with their top: their output is
      ``softmax`` of the last ``Dense`` ("predictions"); the logits are then
      taken as that layer's pre-activation ``x @ kernel + bias`` (or the input
      of a final ``Softmax``/``Activation("softmax")`` layer);
    * anything else via ``logits_fn(model_outputs) -> logits``.

    Args:
        model: the trained classifier, called as ``model(images, training=False)``.
        layer_names: one path or a list of paths (``"block4_conv2"``,
            ``"backbone/block5_conv3"``); see :func:`resolve_layer`. Each
            layer must output a channels-last ``[B, H, W, K]`` tensor.
        alpha: the constant multiplying the one-hot target in Eq. 7 (10 in
            the paper).
        method: default map: ``"dgl"`` (Eq. 8), ``"pcs"`` (pixel-level class
            selection, Eq. 5), ``"gradcam"`` or another of `METHODS_DGL`
            (`wsol_keras.localization.cam_family`).
        logits_fn: optional callable mapping the model's outputs to logits.
        output_key: key of the logits in dict outputs.
        jit_compile: passed to ``tf.function``.
        scorecam_channels: the cap N of ``"scorecam"`` (top-N channels by
            mean activation; N more forward passes per image).

    Call args:
        images: ``[B, S, S, 3]`` batch in the model's input domain.
        labels: optional int ``[B]`` target classes (default: top-1 prediction).
        method: overrides the default method for this call.
        return_logits: also return the logits (key ``"logits"``) and the target
            classes (key ``"target"``).
        return_outputs: also return the model's outputs (key ``"outputs"``)
            from the same recorded forward pass, so a caller that needs the
            outputs (logits, class maps, boxes) and the maps runs the model
            once per batch.

    Returns:
        dict ``layer_name -> float32 [B, H_l, W_l]`` (raw maps, not normalized;
        the evaluator min-max normalizes).
    """

    def __init__(
        self,
        model,
        layer_names,
        alpha=10.0,
        method="dgl",
        logits_fn=None,
        output_key="logits",
        jit_compile=False,
        scorecam_channels=cam_family.SCORECAM_DEFAULT_CHANNELS,
    ):
        if isinstance(layer_names, str):
            layer_names = [layer_names]
        layer_names = list(layer_names)
        if not layer_names:
            raise ValueError("DualGradient: layer_names is empty.")
        if len(set(layer_names)) != len(layer_names):
            raise ValueError(f"DualGradient: duplicate layer names {layer_names}.")
        if method not in METHODS_DGL:
            raise ValueError(
                f"DualGradient: method={method!r}; expected one of {METHODS_DGL}."
            )
        self.model = model
        self.layer_names = layer_names
        self.alpha = float(alpha)
        self.method = method
        self.logits_fn = logits_fn
        self.output_key = output_key
        self.jit_compile = jit_compile
        if int(scorecam_channels) < 1:
            raise ValueError(
                f"DualGradient: scorecam_channels={scorecam_channels}: must be >= 1"
            )
        self.scorecam_channels = int(scorecam_channels)
        self._layers = {n: resolve_layer(model, n) for n in layer_names}
        self._logit_layer = (
            None if logits_fn is not None else self._find_softmax_layer()
        )
        self._functions = {}

    def _find_softmax_layer(self):
        """The output layer of a functional model ending in softmax, if any."""
        outputs = getattr(self.model, "outputs", None)
        if not outputs or len(outputs) != 1:
            return None
        history = getattr(outputs[0], "_keras_history", None)
        if history is None:
            return None
        layer = history[0]
        if isinstance(layer, keras.layers.Softmax):
            return layer
        if _is_softmax(getattr(layer, "activation", None)):
            return layer
        return None

    def _logits(self, outputs, recorder):
        if self.logits_fn is not None:
            return self.logits_fn(outputs)
        if isinstance(outputs, dict):
            if self.output_key not in outputs:
                raise ValueError(
                    f"DualGradient: model output dict has no {self.output_key!r}; "
                    f"keys: {sorted(outputs)}. Pass output_key or logits_fn."
                )
            return outputs[self.output_key]
        if self._logit_layer is not None:
            layer = self._logit_layer
            x = recorder.inputs["__logits__"]
            if isinstance(layer, keras.layers.Dense):
                z = tf.matmul(tf.cast(x, layer.kernel.dtype), layer.kernel)
                return z + layer.bias if layer.use_bias else z
            if isinstance(layer, (keras.layers.Softmax, keras.layers.Activation)):
                return x
            raise ValueError(
                f"DualGradient: cannot take pre-softmax logits of layer "
                f"{layer.name!r} ({type(layer).__name__}); pass logits_fn."
            )
        return outputs

    def _compute(self, images, labels, method, use_labels):
        recorder = _Recorder()
        watched = dict(self._layers)
        if self._logit_layer is not None:
            watched["__logits__"] = self._logit_layer
        with tf.GradientTape(persistent=(method == "dgl")) as tape:
            with recorder.watch(watched):
                outputs = self.model(images, training=False)
            logits = tf.cast(self._logits(outputs, recorder), tf.float32)
        missing = [n for n in self.layer_names if n not in recorder.outputs]
        if missing:
            raise ValueError(
                f"DualGradient: layers {missing} were not called in the forward pass."
            )
        feats = [recorder.outputs[n] for n in self.layer_names]
        for name, s in zip(self.layer_names, feats):
            if len(s.shape) != 4:
                raise ValueError(
                    f"DualGradient: layer {name!r} outputs shape {s.shape}; "
                    "need [B, H, W, K] feature maps."
                )
        num_classes = logits.shape[-1]
        if use_labels:
            target = tf.cast(tf.reshape(labels, [-1]), tf.int32)
        else:
            target = tf.argmax(logits, axis=-1, output_type=tf.int32)
        onehot = tf.one_hot(target, num_classes, dtype=tf.float32)
        # g_H = d l_c / d S: VJP of the logits with cotangent onehot_c. Images
        # are independent in inference mode, so one batched VJP gives every
        # image's own gradient.
        if method in GRADIENT_FREE_METHODS:
            del tape
            return self._gradient_free(method, images, feats, target), logits, target, outputs
        grads_h = tape.gradient(logits, feats, output_gradients=onehot)
        unused = [n for n, g in zip(self.layer_names, grads_h) if g is None]
        if unused:
            raise ValueError(
                f"DualGradient: the logits do not depend on layers {unused}."
            )
        if method == "dgl":
            # Official fused CE gradient w.r.t. logits: softmax(l) - alpha*onehot.
            cot = tf.nn.softmax(logits) - self.alpha * onehot
            grads_cost = tape.gradient(logits, feats, output_gradients=cot)
            del tape
        maps = {}
        for i, name in enumerate(self.layer_names):
            s = tf.cast(feats[i], tf.float32)
            gh = tf.cast(grads_h[i], tf.float32)
            if method == "pcs":  # Eq. 5
                m = tf.reduce_sum(gh * s, axis=-1)
            elif method == "gradcam":
                weights = tf.reduce_mean(gh, axis=(1, 2), keepdims=True)
                m = tf.nn.relu(tf.reduce_sum(weights * s, axis=-1))
            elif method in _FAMILY:
                m = _FAMILY[method](s, gh)
            else:  # Eq. 7 + Eq. 8
                g = tf.cast(grads_cost[i], tf.float32)
                enhanced = tf.math.l2_normalize(
                    s, axis=[1, 2, 3]
                ) - tf.math.l2_normalize(g, axis=[1, 2, 3])
                m = tf.reduce_sum(gh * enhanced, axis=-1)
            maps[name] = m
        return maps, logits, target, outputs

    def _class_probability(self, images):
        """Softmax of the model's logits (Score-CAM's masked passes)."""
        recorder = _Recorder()
        watched = {} if self._logit_layer is None else {"__logits__": self._logit_layer}
        with recorder.watch(watched):
            outputs = self.model(images, training=False)
        return tf.nn.softmax(tf.cast(self._logits(outputs, recorder), tf.float32))

    def _gradient_free(self, method, images, feats, target):
        """``eigencam`` / ``scorecam`` maps (no backward pass)."""
        maps = {}
        for name, s in zip(self.layer_names, feats):
            s = tf.cast(s, tf.float32)
            if method == "eigencam":
                maps[name] = cam_family.eigencam(s)
            else:
                maps[name] = cam_family.scorecam(
                    s, tf.cast(images, tf.float32), self._class_probability,
                    self.scorecam_channels, target,
                )
        return maps

    def _function(self, method, use_labels):
        key = (method, use_labels)
        if key not in self._functions:

            def fn(images, labels):
                return self._compute(images, labels, method, use_labels)

            self._functions[key] = tf.function(
                fn, reduce_retracing=True, jit_compile=self.jit_compile
            )
        return self._functions[key]

    def __call__(
        self, images, labels=None, method=None, return_logits=False, return_outputs=False
    ):
        method = method or self.method
        if method not in METHODS_DGL:
            raise ValueError(
                f"DualGradient: method={method!r}; expected one of {METHODS_DGL}."
            )
        images = tf.convert_to_tensor(images)
        if not images.dtype.is_floating:
            images = tf.cast(images, tf.float32)
        use_labels = labels is not None
        if use_labels:
            labels = tf.reshape(tf.cast(labels, tf.int32), [-1])
        else:
            labels = tf.zeros([tf.shape(images)[0]], tf.int32)
        maps, logits, target, outputs = self._function(method, use_labels)(images, labels)
        maps = dict(maps)
        if return_logits:
            maps["logits"] = logits
            maps["target"] = target
        if return_outputs:
            maps["outputs"] = outputs
        return maps

    def cams(self, images, layer_name=None, labels=None, method=None):
        """One layer's maps as ``[B, H, W, 1]`` (for code expecting CAM tensors)."""
        name = layer_name or self.layer_names[0]
        return self(images, labels=labels, method=method)[name][..., None]
