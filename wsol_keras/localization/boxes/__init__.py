"""Score map -> boxes, one module per engine (same boxes, different costs).

* `reference`: the conventions (absolute pixel xyxy, wsolevaluation's
  ``compute_bboxes_from_scoremaps`` rule and inclusive-+1 IoU) and the plain
  cv2 loop, one ``findContours`` per threshold;
* `component_tree`: the fast path the metrics use, identical boxes from the
  score map's component tree;
* `graph`: pure TensorFlow ops for the exported SavedModel / TFLite graphs;
* `extent`: SLT-Net's in-graph pseudo box (largest component, or extent, of the
  thresholded map).

Reference: Choe et al., "Evaluating Weakly Supervised Object Localization
Methods Right", CVPR 2020 (the box rule of MaxBoxAcc / MaxBoxAccV2).
"""

from wsol_keras.localization.boxes.component_tree import boxes_from_scoremap
from wsol_keras.localization.boxes.component_tree import largest_contour_box
from wsol_keras.localization.boxes.component_tree import level_boxes
from wsol_keras.localization.boxes.component_tree import quantized_level_boxes
from wsol_keras.localization.boxes.extent import PSEUDO_BOX_RULES
from wsol_keras.localization.boxes.extent import component_box_from_maps
from wsol_keras.localization.boxes.extent import extent_box_from_maps
from wsol_keras.localization.boxes.extent import pseudo_box_from_maps
from wsol_keras.localization.boxes.graph import tf_largest_component_box
from wsol_keras.localization.boxes.reference import iou_xyxy
from wsol_keras.localization.boxes.reference import normalize_scoremap
from wsol_keras.localization.boxes.reference import quantize_scoremap
from wsol_keras.localization.boxes.reference import quantize_scoremaps
from wsol_keras.localization.boxes.reference import reference_boxes_from_scoremap
from wsol_keras.localization.boxes.reference import threshold_levels

__all__ = [
    "PSEUDO_BOX_RULES",
    "boxes_from_scoremap",
    "component_box_from_maps",
    "extent_box_from_maps",
    "iou_xyxy",
    "largest_contour_box",
    "level_boxes",
    "normalize_scoremap",
    "pseudo_box_from_maps",
    "quantize_scoremap",
    "quantize_scoremaps",
    "quantized_level_boxes",
    "reference_boxes_from_scoremap",
    "tf_largest_component_box",
    "threshold_levels",
]
