"""Keras layers of the WSOL methods, usable on any keras.applications backbone."""

from wsol_keras.layers.cam_head import CAMHead
