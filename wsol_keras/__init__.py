"""wsol_keras: weakly supervised object localization in Keras 3.

Public API in pipeline order: data -> backbones -> layers / losses / models
(the METHODS registry) -> cams -> boxes -> metrics.  Importing the package registers every layer and
loss with Keras' serialization.

`wsol_keras.layers` and `wsol_keras.losses` are pure `keras.ops` and run on any
Keras backend (TensorFlow, JAX, PyTorch). The rest (tf.data input pipeline,
models' GradientTape train step, tf.distribute, CAM/DGL extraction, export) needs
TensorFlow: under the TensorFlow backend it is imported with the package as
before; under another backend it is imported on first use (attribute access), so
`import wsol_keras.layers` works where TensorFlow is not installed.

The package's console scripts (``wsol-train``, ...) parse their flags before
any of this is imported, so ``--help`` and command-line mistakes answer at
once; they call :func:`load_deferred` once the flags are parsed.
"""

import importlib
import os
import sys

__version__ = "0.1.0"

# name -> (module, attribute or None for the module itself); need TensorFlow.
_TF_PARTS = {
    "backbones": ("wsol_keras.models.backbones", None),
    "cams": ("wsol_keras.localization.primitives", None),
    "data": ("wsol_keras.data", None),
    "models": ("wsol_keras.models", None),
    "BACKBONES": ("wsol_keras.models.backbones", "BACKBONES"),
    "build_backbone": ("wsol_keras.models.backbones", "build_backbone"),
    "METHODS": ("wsol_keras.models.registry", "METHODS"),
    "build_model": ("wsol_keras.models.registry", "build_model"),
    "DualGradient": ("wsol_keras.localization.dual_gradient", "DualGradient"),
}


def __getattr__(name):
    if name in ("layers", "losses"):  # deferred by a console script
        return importlib.import_module(f"wsol_keras.{name}")
    if name not in _TF_PARTS:
        raise AttributeError(f"module 'wsol_keras' has no attribute {name!r}")
    module_name, attr = _TF_PARTS[name]
    module = importlib.import_module(module_name)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value


def load_deferred():
    """Imports the layers, losses and (TensorFlow backend) the rest, which
    registers every serializable with Keras; idempotent."""
    import keras  # pylint: disable=g-import-not-at-top

    importlib.import_module("wsol_keras.layers")
    importlib.import_module("wsol_keras.losses")
    if keras.backend.backend() == "tensorflow":
        # Eagerly, as before: registers the models' serializables on import.
        for name in _TF_PARTS:
            __getattr__(name)


def _started_by_console_script():
    """A ``wsol-*`` console script (wsol_keras.cli.console) defers the import."""
    return os.path.basename(sys.argv[0] if sys.argv else "").startswith("wsol-")


if not _started_by_console_script():
    load_deferred()
