"""Keras layers of the WSOL methods, usable on any keras.applications backbone."""

from wsol_keras.layers.attention_dropout import AttentionDropout
from wsol_keras.layers.cam_head import CAMHead
from wsol_keras.layers.complementary_erase import ComplementaryErase
from wsol_keras.layers.divergent_activation import DivergentActivation
from wsol_keras.layers.divergent_activation import localization_maps
from wsol_keras.layers.hide_and_seek import HideAndSeek
from wsol_keras.layers.soft_proposal import GlobalSumPooling2D
from wsol_keras.layers.soft_proposal import SoftProposal
from wsol_keras.layers.padded_max_pool import PaddedMaxPooling2D
from wsol_keras.layers.patch_tokens import PatchTokensToMap
from wsol_keras.layers.patch_tokens import ScaleOffset
