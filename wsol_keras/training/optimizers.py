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
        lr_multipliers: dict variable path -> learning-rate multiplier
            (1.0 for variables not listed); see `variable_lr_multipliers`.
        l2_exclude: variable paths without L2 (DGL's release decays only
            weights: tensorpack `regularize_cost('.*/W', ...)`).
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
        self.lr_multipliers = {str(k): float(v) for k, v in (lr_multipliers or {}).items()}
        self.l2_exclude = tuple(str(p) for p in l2_exclude)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        # Resolved by index: under the TF backend update_step receives the
        # backend variable, which has no Keras path.
        self._multipliers = [self.lr_multipliers.get(v.path, 1.0) for v in variables]
        excluded = set(self.l2_exclude)
        self._decays = [0.0 if v.path in excluded else self.l2 for v in variables]
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
                "lr_multipliers": dict(self.lr_multipliers),
                "l2_exclude": list(self.l2_exclude),
            }
        )
        return config


def variable_lr_multipliers(model, bias_multiplier=1.0):
    """Variable path -> learning-rate multiplier, the released groups.

    The new-layer factor comes from the model itself
    (`WSOLModel._gradient_multipliers`: 1 for pretrained backbones,
    `head_lr_multiplier` for new layers and for backbone layers named by
    `train.head_lr_backbone_prefixes`), so each model keeps its own notion of
    "new"; biases get `bias_multiplier` on top, as `get_finetune_optimizer`
    gives pretrained biases 2 x lr and new biases 20 x lr.  It sorts torch
    parameters by the name "bias", which also covers BatchNorm's shift (Keras
    "beta"); BatchNorm's scale ("gamma", torch "weight") is a weight.
    """
    variables = model.trainable_variables
    heads = model._gradient_multipliers()
    out = {}
    for v, head in zip(variables, heads):
        scale = float(bias_multiplier) if _is_bias(v) else 1.0
        out[v.path] = float(head) * scale
    return out


def _is_bias(variable):
    return variable.path.rsplit("/", 1)[-1] in ("bias", "beta")


def bias_paths(model):
    """Paths of the model's biases (and BatchNorm shifts)."""
    return [v.path for v in model.trainable_variables if _is_bias(v)]


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
            l2_exclude=() if t.get("decay_biases", True) else bias_paths(model),
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
        boundaries = [e * steps_per_epoch for e in decay_epochs if e < t.epochs]
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
