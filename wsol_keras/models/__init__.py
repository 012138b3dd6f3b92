"""Method models: `WSOLModel` subclasses and the METHODS registry."""

from wsol_keras.models.base import WSOLModel
from wsol_keras.models.registry import METHODS, build_model, default_method_config
