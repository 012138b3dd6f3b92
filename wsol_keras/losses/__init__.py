"""Losses of the WSOL methods."""

from wsol_keras.losses.class_tolerant import ClassTolerantLoss
from wsol_keras.losses.class_tolerant import topk_average_cams
from wsol_keras.losses.discrepancy import DiscrepancyLoss
from wsol_keras.losses.discrepancy import discrepancy_loss
from wsol_keras.losses.discrepancy import gather_target_maps
from wsol_keras.losses.discrepancy import pairwise_cosine_similarity
from wsol_keras.losses.hierarchical import HierarchicalCrossEntropy
from wsol_keras.losses.hierarchical import ancestors_table
from wsol_keras.losses.hierarchical import cluster_hierarchy
from wsol_keras.losses.hierarchical import hierarchical_cross_entropy
from wsol_keras.losses.hierarchical import hierarchy_level_labels
from wsol_keras.losses.visual_tolerance import VisualStimulusTransform
from wsol_keras.losses.visual_tolerance import visual_stimulus_tolerance_loss
