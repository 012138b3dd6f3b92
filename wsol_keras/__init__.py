"""wsol_keras: weakly supervised object localization in Keras 3.

Public API in pipeline order: data -> backbones -> layers / losses / models
(the METHODS registry) -> cams -> boxes -> metrics.  Importing the package registers every layer and
loss with Keras' serialization.
"""

__version__ = "0.1.0"

from wsol_keras import backbones
from wsol_keras import cams
from wsol_keras import data
from wsol_keras import layers
from wsol_keras import losses
from wsol_keras import models
from wsol_keras.backbones import BACKBONES, build_backbone
from wsol_keras.models.registry import METHODS, build_model
from wsol_keras.dual_gradient import DualGradient
