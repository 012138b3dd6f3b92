"""The localization metrics, public: ``from wsol_keras.metrics import BoxAccuracy``.

Their home is `wsol_keras.evaluation.metrics` (streaming, numpy in, percent
out, equal to wsolevaluation's definitions); this module is the stable
public import path for users' own evaluation loops.
"""

from wsol_keras.evaluation.metrics import (  # noqa: F401
    BoxAccuracy,
    CorLoc,
    LocalizationAccuracy,
    PointingGame,
    PxAP,
    default_cam_thresholds,
    top_k_correct,
)

__all__ = [
    "BoxAccuracy",
    "PxAP",
    "LocalizationAccuracy",
    "PointingGame",
    "CorLoc",
    "top_k_correct",
    "default_cam_thresholds",
]
