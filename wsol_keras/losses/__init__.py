"""Losses of the WSOL methods."""

from wsol_keras.losses.class_tolerant import ClassTolerantLoss
from wsol_keras.losses.class_tolerant import topk_average_cams
from wsol_keras.losses.visual_tolerance import VisualStimulusTransform
from wsol_keras.losses.visual_tolerance import visual_stimulus_tolerance_loss
