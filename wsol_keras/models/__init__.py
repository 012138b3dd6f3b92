"""Method models: `WSOLModel` subclasses and their builders."""

from wsol_keras.models.base import WSOLModel
