"""The localization metrics, public: ``from wsol_keras.metrics import BoxAccuracy``.

Their home is `wsol_keras.evaluation.metrics` (streaming, numpy in, percent
out, equal to wsolevaluation's definitions); this module is the stable
public import path for users' own evaluation loops.
"""

from wsol_keras.evaluation import metrics as _metrics
from wsol_keras.evaluation.metrics import *  # noqa: F401,F403  (the public names)

__all__ = list(_metrics.__all__)
