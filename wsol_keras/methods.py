"""The METHODS registry: method name -> builder wiring backbone + layers + head + losses.

Each builder has the signature `build(config, data_info) -> WSOLModel` where
`data_info` holds "num_classes", "hierarchy_sizes" (classes per ancestor
level, nearest parent first) and "image_size".  `config.method.name` picks the
entry; every other `config.method` field belongs to that method.
"""

from wsol_keras.models import acol
from wsol_keras.models import cam
from wsol_keras.models import danet
from wsol_keras.models import slt
from wsol_keras.models import spn

METHODS = {
    "cam": cam.build,
    "spn": spn.build,
    "acol": acol.build,
    "danet": danet.build,
    "slt": slt.build,
}

DEFAULT_METHOD_CONFIGS = {
    "cam": cam.default_method_config,
    "spn": spn.default_method_config,
    "acol": acol.default_method_config,
    "danet": danet.default_method_config,
    "slt": slt.default_method_config,
}


def build_model(config, data_info):
    """Builds the model of `config.method.name` (not yet compiled)."""
    name = config.method.name
    if name not in METHODS:
        raise ValueError(
            f"config.method.name={name!r} is not a registered "
            f"method; choose one of {sorted(METHODS)}"
        )
    from wsol_keras.data.checks import check_data_for_method

    check_data_for_method(config, data_info)
    return METHODS[name](config, data_info)
