"""The papers' optimizer: PyTorch-style SGD with coupled L2 and per-group rates.

The released code of the papers trains with `torch.optim.SGD` whose
`weight_decay` is coupled L2: the decay term is added to the gradient *before*
momentum, and every parameter group's learning rate scales gradient and decay
alike.  The groups (`get_finetune_optimizer` in xiaomengyc/ACoL and
xuehaolan/DANet, exper/my_optim.py):

    pretrained weights  lr          pretrained biases  2 x lr
    new-layer weights   10 x lr     new-layer biases   20 x lr

momentum 0.9, weight_decay 5e-4 on every group (biases included), Nesterov in
ACoL's release (`nesterov=True`), plain momentum in DANet's and SPN's.
SPN.pytorch (demo/experiment/engine.py) uses one group at lr 0.01.

`CoupledSGD` reproduces `torch.optim.SGD.step` exactly, per variable:

    d   = g + weight_decay * w                     (coupled L2)
    buf = momentum * buf + d                       (buf starts at 0)
    d   = d + momentum * buf   if nesterov  else  buf
    w   = w - lr * multiplier(w) * d

Keras' own SGD differs in two ways the papers' numbers depend on: its
`weight_decay` is decoupled (`w -= lr * wd * w`, outside momentum) and its
momentum buffer accumulates `lr * g`, so a learning-rate drop takes effect
gradually instead of at once.  The decoupled form stays available as
`config.train.optimizer = "sgd"`.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="wsol_keras")
class CoupledSGD(keras.optimizers.Optimizer):
    """SGD with coupled L2 weight decay and per-variable learning-rate multipliers.

    Args:
        learning_rate: base rate (float or schedule), the rate of pretrained
            weights.
        momentum: momentum factor (0 disables the buffer).
        nesterov: Nesterov momentum as `torch.optim.SGD(nesterov=True)`.
        l2: coupled weight decay added to the gradient (torch's
            `weight_decay`).
        lr_multipliers: the learning-rate multiplier of each variable (1.0
            for variables not listed), as (variable, multiplier) pairs
            matched by identity (`variable_lr_multipliers`), as a list of
            floats by position in the list `build` receives (what
            `get_config` writes once built), or as a dict variable path ->
            multiplier. A path names two variables when a model holds two
            sub-networks with the same layer names (e.g. a localizer, a regressor
            and a classifier backbone); a path dict that lists such
            a path is refused in `build` rather than giving both one rate.
        l2_exclude: the variables without L2 (DGL's release decays only
            weights: tensorpack `regularize_cost('.*/W', ...)`): variables
            (by identity), positions, or paths (refused when ambiguous, as
            above).
        **kwargs: `keras.optimizers.Optimizer` arguments (not `weight_decay`:
            that is Keras' decoupled decay, which this optimizer replaces).
    """

    def __init__(
        self,
        learning_rate=0.01,
        momentum=0.9,
        nesterov=False,
        l2=0.0,
        lr_multipliers=None,
        l2_exclude=(),
        name="coupled_sgd",
        **kwargs,
    ):
        if kwargs.get("weight_decay"):
            raise ValueError(
                "CoupledSGD: weight_decay is Keras' decoupled decay; pass the "
                "coupled L2 coefficient as l2="
            )
        kwargs.pop("weight_decay", None)
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        if momentum < 0 or l2 < 0:
            raise ValueError(
                f"CoupledSGD: momentum={momentum} and l2={l2} must be >= 0"
            )
        if nesterov and momentum == 0:
            raise ValueError("CoupledSGD: nesterov=True needs momentum > 0")
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        self.l2 = float(l2)
        self.lr_multipliers = _normalise_multipliers(lr_multipliers)
        self.l2_exclude = _normalise_exclude(l2_exclude)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        # Resolved by index: under the TF backend update_step receives the
        # backend variable, which has no Keras path.
        self._built_variables = list(variables)
        self._multipliers = _resolve_multipliers(self.lr_multipliers, variables)
        excluded = _resolve_exclude(self.l2_exclude, variables)
        self._decays = [0.0 if e else self.l2 for e in excluded]
        self.momentums = []
        if self.momentum:
            self.momentums = self.add_optimizer_variables(variables, "momentum")

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        index = self._get_variable_index(variable)
        multiplier = self._multipliers[index]
        lr = ops.cast(learning_rate, dtype) * ops.cast(multiplier, dtype)
        d = ops.cast(gradient, dtype)
        if self._decays[index]:
            d = d + ops.cast(self._decays[index], dtype) * variable
        if self.momentum:
            buf = self.momentums[index]
            momentum = ops.cast(self.momentum, dtype)
            new_buf = momentum * buf + d
            self.assign(buf, new_buf)
            d = d + momentum * new_buf if self.nesterov else new_buf
        self.assign_sub(variable, lr * d)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "momentum": self.momentum,
                "nesterov": self.nesterov,
                "l2": self.l2,
                "lr_multipliers": self._serialisable_multipliers(),
                "l2_exclude": self._serialisable_exclude(),
            }
        )
        return config

    def multiplier_of(self, variable):
        """The learning-rate multiplier `build` gave `variable` (by identity)."""
        return self._multipliers[self._index_by_identity(variable)]

    def decays(self, variable):
        """Whether `build` gave `variable` coupled L2 (by identity)."""
        return bool(self._decays[self._index_by_identity(variable)])

    def _index_by_identity(self, variable):
        for i, v in enumerate(self._built_variables):
            if v is variable:
                return i
        raise KeyError(f"CoupledSGD: {variable.path!r} is not one of its variables")

    def _serialisable_multipliers(self):
        if isinstance(self.lr_multipliers, dict):
            return dict(self.lr_multipliers)
        if self.built:
            return [float(m) for m in self._multipliers]
        return [float(m) for _, m in self.lr_multipliers]

    def _serialisable_exclude(self):
        if isinstance(self.l2_exclude, tuple):
            return list(self.l2_exclude)
        if self.built:
            return [i for i, d in enumerate(self._decays) if not d]
        raise ValueError(
            "CoupledSGD.get_config: l2_exclude given as variables is "
            "serialisable once the optimizer is built"
        )


def _normalise_multipliers(spec):
    """dict path -> float, or a list of (variable, float) pairs or floats."""
    if spec is None:
        return {}
    if isinstance(spec, dict):
        return {str(k): float(v) for k, v in spec.items()}
    return [
        (item[0], float(item[1])) if isinstance(item, (tuple, list)) else float(item)
        for item in spec
    ]


def _normalise_exclude(spec):
    """A tuple of paths, or a list of variables / positions."""
    spec = list(spec or ())
    return tuple(spec) if all(isinstance(x, str) for x in spec) else spec


def _by_path(values, variables, default, field):
    """`values[path]` per variable; a listed path naming several is refused."""
    counts = {}
    for v in variables:
        counts[v.path] = counts.get(v.path, 0) + 1
    shared = sorted(p for p in values if counts.get(p, 0) > 1)
    if shared:
        raise ValueError(
            f"CoupledSGD: {field} keyed by path, but {len(shared)} listed paths "
            f"name several variables (e.g. {shared[0]!r}: sub-networks with "
            "the same layer names); give the variables themselves"
        )
    return [values.get(v.path, default) for v in variables]


def _resolve_multipliers(spec, variables):
    if isinstance(spec, dict):
        return _by_path(spec, variables, 1.0, "lr_multipliers")
    if spec and not isinstance(spec[0], tuple):
        if len(spec) != len(variables):
            raise ValueError(
                f"CoupledSGD: lr_multipliers lists {len(spec)} rates by "
                f"position, but build received {len(variables)} variables"
            )
        return list(spec)
    by_id = {id(v): m for v, m in spec}
    return [by_id.get(id(v), 1.0) for v in variables]


def _resolve_exclude(spec, variables):
    if isinstance(spec, tuple):
        return _by_path(dict.fromkeys(spec, True), variables, False, "l2_exclude")
    ids = {id(x) for x in spec if not isinstance(x, int)}
    positions = {x for x in spec if isinstance(x, int)}
    return [id(v) in ids or i in positions for i, v in enumerate(variables)]


def variable_lr_multipliers(model, bias_multiplier=1.0):
    """(variable, learning-rate multiplier) pairs, the released groups.

    The new-layer factor comes from the model itself
    (`WSOLModel._gradient_multipliers`: 1 for pretrained backbones,
    `head_lr_multiplier` for new layers and for backbone layers named by
    `train.head_lr_backbone_prefixes`), so each model keeps its own notion of
    "new"; biases get `bias_multiplier` on top, as `get_finetune_optimizer`
    gives pretrained biases 2 x lr and new biases 20 x lr.  It sorts torch
    parameters by the name "bias", which also covers BatchNorm's shift (Keras
    "beta"); BatchNorm's scale ("gamma", torch "weight") is a weight.

    Pairs, not a dict by path: a model can hold several sub-networks with the
    same layer names (a model with several branches), whose variables share
    paths but not rates.
    """
    variables = model.trainable_variables
    heads = model._gradient_multipliers()
    out = []
    for v, head in zip(variables, heads):
        scale = float(bias_multiplier) if _is_bias(v) else 1.0
        out.append((v, float(head) * scale))
    return out


def _is_bias(variable):
    return variable.path.rsplit("/", 1)[-1] in ("bias", "beta")


def bias_variables(model):
    """The model's biases (and BatchNorm shifts), as variables."""
    return [v for v in model.trainable_variables if _is_bias(v)]


def build_optimizer(train_config, learning_rate, model=None):
    """The optimizer `config.train` names, on `learning_rate` (float or schedule).

    Args:
        train_config: `config.train` (fields optimizer, momentum, nesterov,
            weight_decay, bias_lr_multiplier, decay_biases).
        learning_rate: base rate or schedule.
        model: the built model; required by "sgd_l2" for its variable groups.

    optimizer:
        "sgd_l2": `CoupledSGD` (the papers' released semantics) with
            `weight_decay` as coupled L2 and per-group rates; the model's
            gradient multiplier is then left to the optimizer.
        "sgd": Keras SGD, decoupled decay (`w -= lr * wd * w`); new layers
            get `head_lr_multiplier` through the gradient (WSOLModel).
        "adam" / "adamw": Keras' Adam / AdamW.
    """
    t = train_config
    name = t.optimizer
    wd = t.weight_decay or None
    nesterov = bool(t.get("nesterov", False))
    if name == "sgd_l2":
        if model is None:
            raise ValueError(
                "config.train.optimizer='sgd_l2' needs the built model for its "
                "variable groups"
            )
        return CoupledSGD(
            learning_rate,
            momentum=t.momentum,
            nesterov=nesterov,
            l2=t.weight_decay,
            lr_multipliers=variable_lr_multipliers(
                model, t.get("bias_lr_multiplier", 1.0)
            ),
            l2_exclude=() if t.get("decay_biases", True) else bias_variables(model),
        )
    if name == "sgd":
        return keras.optimizers.SGD(
            learning_rate, momentum=t.momentum, nesterov=nesterov, weight_decay=wd
        )
    if name == "adam":
        return keras.optimizers.Adam(learning_rate, weight_decay=wd)
    if name == "adamw":
        return keras.optimizers.AdamW(learning_rate, weight_decay=t.weight_decay)
    raise ValueError(
        f"config.train.optimizer={name!r}: expected sgd_l2, sgd, adam or adamw"
    )


def make_optimizer(config, steps_per_epoch, model=None):
    """The configured optimizer with its learning-rate schedule (cosine with
    warmup, step, constant) over `config.train.epochs * steps_per_epoch`."""
    t = config.train
    total = max(1, t.epochs * steps_per_epoch)
    if t.lr_schedule == "cosine":
        warmup = t.warmup_epochs * steps_per_epoch
        lr = keras.optimizers.schedules.CosineDecay(
            0.0 if warmup else t.learning_rate,
            decay_steps=max(1, total - warmup),
            warmup_target=t.learning_rate if warmup else None,
            warmup_steps=warmup,
        )
    elif t.lr_schedule == "step":
        decay_epochs = tuple(t.get("lr_decay_at_epochs", ())) or range(
            t.lr_decay_epochs, t.epochs, t.lr_decay_epochs
        )
        # Keras calls the schedule with the number of steps taken and keeps
        # values[i] while step <= boundaries[i]; torch's MultiStepLR (stepped
        # after each epoch) runs the whole epoch e, its first step included, at
        # the new rate: boundary e * steps_per_epoch - 1.
        boundaries = [e * steps_per_epoch - 1 for e in decay_epochs if e < t.epochs]
        values = [
            t.learning_rate * t.lr_decay_factor**i for i in range(len(boundaries) + 1)
        ]
        lr = (
            keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)
            if boundaries
            else t.learning_rate
        )
    elif t.lr_schedule == "constant":
        lr = t.learning_rate
    else:
        raise ValueError(
            f"config.train.lr_schedule={t.lr_schedule!r}: expected "
            "cosine, step or constant"
        )
    return build_optimizer(t, lr, model)
