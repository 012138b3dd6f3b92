"""`WSOLModel`: the training plumbing every method shares.

A method subclasses `WSOLModel` and implements two hooks:

    * `forward(images, labels, hierarchy, training)` -> dict of outputs with at
        least "logits" [B, C] and "cams" [B, h, w, C] (float32 class maps of the
        leaf classes); "boxes" [B, 4] (normalized xyxy) for box regressors.
        `labels` / `hierarchy` are given during `fit` (ACoL erases with the
        ground-truth class) and are None at inference.
    * `loss_terms(inputs, outputs, training)` -> dict name -> float32 scalar;
        the total loss is their sum plus the layers' regularization losses.

and optionally `train_batch_transform()` (a tf.data batch augmentation).

`fit` feeds x = {"image", "label", "hierarchy"} and y = label (see
`wsol_keras.training.trainer.make_train_dataset`).  The base class scales the loss for
`tf.distribute` (per-replica mean / replicas), applies the optimizer's loss
scaling under mixed precision, multiplies the gradients of new layers by
`head_lr_multiplier` (the papers train new layers at 10x the learning rate of
the pretrained backbone; for SGD a gradient multiplier is exactly a learning
rate multiplier, with Keras' decoupled decay; `wsol_keras.training.optimizers.CoupledSGD`
applies the papers' per-variable rates itself and then no gradient is scaled),
and tracks every loss term and top-1 accuracy.
"""

import dataclasses
import inspect

import keras
import tensorflow as tf
from keras import ops


@dataclasses.dataclass(frozen=True)
class PreFitPhase:
    """A run a method needs before its own fit (`wsol_keras.models.phases`).

    wsol-train trains ``config`` as an ordinary, resumable run in
    ``<workdir>/<name>`` and then calls ``apply(model, trained_model,
    phase_workdir)`` to carry what it learned into the method's model.

    Attributes:
        name: the phase's subfolder of the workdir.
        config: the phase run's complete experiment config.
        config_field: the field that sets the phase (named in errors).
        apply: callable(model, trained_model, phase_workdir).
    """

    name: str
    config: object
    config_field: str
    apply: object


def constructor_defaults(cls, names=None):
    """{argument: default} of `cls.__init__`'s arguments that have a default.

    Lets a model take a layer's defaults (e.g. SPN's `SoftProposal` arguments)
    without restating them.

    Args:
        cls: a class.
        names: the arguments to return (all with a default when None).
    """
    params = inspect.signature(cls).parameters
    found = {
        n: p.default
        for n, p in params.items()
        if p.default is not inspect.Parameter.empty
    }
    if names is None:
        return found
    return {n: found[n] for n in names}


def sparse_ce(labels, logits):
    """Mean softmax cross-entropy in float32."""
    return ops.mean(
        keras.losses.sparse_categorical_crossentropy(
            labels, ops.cast(logits, "float32"), from_logits=True
        )
    )


def _across_workers():
    """Whether `fit` runs under MultiWorkerMirroredStrategy with 2+ workers."""
    strategy = tf.distribute.get_strategy()
    return isinstance(
        strategy, tf.distribute.MultiWorkerMirroredStrategy
    ) and strategy.extended._in_multi_worker_mode()


def _backbone_layers(backbone, prefixes):
    """The backbone's layers (nested models walked) named with one of `prefixes`."""
    found, stack = [], list(backbone.layers)
    while stack:
        layer = stack.pop(0)
        if isinstance(layer, keras.Model):
            stack[:0] = layer.layers
        elif any(layer.name.startswith(p) for p in prefixes):
            found.append(layer)
    return found


def _check_prefixes(model_class, backbone, prefixes):
    """`head_lr_backbone_prefixes` as a tuple, each matching a backbone layer."""
    if isinstance(prefixes, str):
        raise ValueError(
            "config.train.head_lr_backbone_prefixes must be a tuple of layer-name "
            f"prefixes such as ('conv5_',), not the string {prefixes!r}"
        )
    prefixes = tuple(str(p) for p in prefixes)
    if prefixes and model_class._gradient_multipliers is not WSOLModel._gradient_multipliers:
        raise ValueError(
            f"config.train.head_lr_backbone_prefixes={prefixes}: "
            f"{model_class.__name__} sets its own learning-rate groups "
            "(_gradient_multipliers) and does not read it; leave it empty"
        )
    for p in prefixes:
        if not p or not _backbone_layers(backbone, (p,)):
            names = [layer.name for layer in _backbone_layers(backbone, ("",))]
            raise ValueError(
                f"config.train.head_lr_backbone_prefixes: {p!r} names no layer of "
                f"backbone {backbone.name!r} (Keras layer names, e.g. "
                f"{names[1:4] + names[-2:]})"
            )
    return prefixes


class WSOLModel(keras.Model):
    """Base class of the package's localization models.

    Args:
        backbone: feature extractor from `wsol_keras.models.backbones.build_backbone`.
        num_classes: number of leaf classes C.
        loss_names: names of the terms `loss_terms` returns (one tracker each).
        head_lr_multiplier: gradient multiplier for every variable outside
            `backbone` (10 with pretrained backbones, as in the papers).
        head_lr_backbone_prefixes: backbone layer-name prefixes whose
            variables train at `head_lr_multiplier` too, e.g. ("conv5_",):
            clovaai/wsolevaluation main.py `Trainer._set_optimizer` puts
            ResNet50's `layer4.` (Keras' conv5 stage) with `fc.` in the
            `lr_classifier_ratio` group.  Each prefix must name at least one
            backbone layer.
    """

    # How `models.registry.build_model` builds the backbone(s) passed first to
    # the constructor: one per name prefix, multi-level (DANet) or not.
    BACKBONE_PREFIXES = ("backbone",)
    BACKBONE_LEVELS = False

    def __init__(
        self,
        backbone,
        num_classes,
        loss_names=("ce",),
        head_lr_multiplier=1.0,
        head_lr_backbone_prefixes=(),
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.backbone = backbone
        self.num_classes = int(num_classes)
        self.loss_names = tuple(loss_names)
        self.head_lr_multiplier = float(head_lr_multiplier)
        self.head_lr_backbone_prefixes = _check_prefixes(
            type(self), backbone, head_lr_backbone_prefixes
        )
        self.loss_trackers = {
            n: keras.metrics.Mean(name=f"{n}_loss") for n in self.loss_names
        }
        self.total_tracker = keras.metrics.Mean(name="loss")
        self.accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")

    # -- hooks -----------------------------------------------------------------

    def forward(self, images, labels=None, hierarchy=None, training=None):
        raise NotImplementedError

    def loss_terms(self, inputs, outputs, training=True):
        return {"ce": sparse_ce(inputs["label"], outputs["logits"])}

    def train_batch_transform(self):
        """None, or a function (batch_index, x, y) -> (x, y) that wsol-train
        maps over the batched training stream (a batch augmentation such as
        CutMix; batch_index counts from the first batch of the run, resumed
        runs included)."""
        return None

    # -- keras plumbing ----------------------------------------------------------

    def call(self, inputs, training=None):
        if isinstance(inputs, dict):
            images = inputs["image"]
            labels = inputs.get("label")
            hierarchy = inputs.get("hierarchy")
        else:
            images, labels, hierarchy = inputs, None, None
        images = ops.cast(images, "float32")
        return self.forward(
            images, labels=labels, hierarchy=hierarchy, training=training
        )

    @property
    def metrics(self):
        return [self.total_tracker, *self.loss_trackers.values(), self.accuracy]

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        terms = self.loss_terms(x, y_pred, training=training)
        unknown = set(terms) - set(self.loss_names)
        if unknown:
            raise ValueError(
                f"{type(self).__name__}.loss_terms returned "
                f"{sorted(unknown)} not declared in loss_names"
            )
        total = ops.zeros((), "float32")
        for name, value in terms.items():
            value = ops.cast(value, "float32")
            self.loss_trackers[name].update_state(value)
            total = total + value
        for extra in self.losses:
            total = total + ops.cast(ops.sum(extra), "float32")
        self.total_tracker.update_state(total)
        return total

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        if (
            len(y.shape) == 1
        ):  # multi-hot labels (multi-label SPN) have no top-1 accuracy
            self.accuracy.update_state(y, y_pred["logits"])
        logs = {m.name: m.result() for m in self.metrics}
        if _across_workers():
            # Keras reduces each log over the workers with
            # `strategy.reduce("MEAN", value, axis=0)`, which fails on scalars
            # ("Invalid reduction dimension 0 for input with 0 dimensions");
            # [1] per replica reduces to the scalar mean over replicas.
            logs = {k: ops.reshape(v, (1,)) for k, v in logs.items()}
        return logs

    def _gradient_multipliers(self):
        promoted = {
            id(v)
            for layer in _backbone_layers(self.backbone, self.head_lr_backbone_prefixes)
            for v in layer.trainable_variables
        }
        backbone_ids = {
            id(v) for v in self.backbone.trainable_variables if id(v) not in promoted
        }
        return [
            1.0 if id(v) in backbone_ids else self.head_lr_multiplier
            for v in self.trainable_variables
        ]

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # `build_model` creates every variable and `train.build_compiled_model`
        # the optimizer's, so `fit` has nothing to build. Keras' version would
        # still take one batch out of the training stream and, under
        # MultiWorkerMirroredStrategy, fail to reduce the dict batch
        # ("Attempt to convert a value ({'image': PerReplica ...}) with an
        # unsupported type (<class 'dict'>)").
        if self.built and (self.optimizer is None or self.optimizer.built):
            return
        super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def train_step(self, data):
        x, y = data[0], data[1]
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(x, y, y_pred, training=True)
            # Each replica sees 1/R of the global batch; gradients are summed.
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            loss = loss / replicas
            scaled = self.optimizer.scale_loss(loss)
        variables = self.trainable_variables
        grads = tape.gradient(scaled, variables)
        # An optimizer with its own per-variable rates (optimizers.CoupledSGD)
        # applies the new-layer factor to gradient and coupled decay alike.
        optimizer = getattr(self.optimizer, "inner_optimizer", self.optimizer)
        multipliers = self._gradient_multipliers()
        if any(m != 1.0 for m in multipliers) and not hasattr(
            optimizer, "lr_multipliers"
        ):
            grads = [
                g if g is None or m == 1.0 else g * m
                for g, m in zip(grads, multipliers)
            ]
        self.optimizer.apply_gradients(zip(grads, variables))
        return self.compute_metrics(x, y, y_pred)

    def test_step(self, data):
        x, y = data[0], data[1]
        y_pred = self(x, training=False)
        self.compute_loss(x, y, y_pred, training=False)
        return self.compute_metrics(x, y, y_pred)
