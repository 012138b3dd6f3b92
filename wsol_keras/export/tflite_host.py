"""Running an exported TFLite model on the host: LiteRT and the host-side
heat map and box (`postprocess`), which `tflite_lib` re-exports."""

import os

import numpy as np
import tensorflow as tf

from wsol_keras.localization import boxes as boxes_lib
from wsol_keras.localization import maps as localization
from wsol_keras.export import inference


class LiteRTModel:
    """Runs a converted model with the LiteRT interpreter (`ai_edge_litert`).

    Args:
        model_content: flatbuffer bytes, or a path to a .tflite file.
        num_threads: interpreter threads.
    """

    def __init__(self, model_content, num_threads=1):
        # LiteRT is an optional dependency (extras "test"): imported on use.
        from ai_edge_litert.interpreter import (  # pylint: disable=g-import-not-at-top
            Interpreter,
        )

        if isinstance(model_content, (str, os.PathLike)):
            self.interpreter = Interpreter(
                model_path=os.fspath(model_content), num_threads=num_threads
            )
        else:
            self.interpreter = Interpreter(
                model_content=model_content, num_threads=num_threads
            )
        self.runner = self.interpreter.get_signature_runner()
        details = self.runner.get_input_details()
        if list(details) != ["image"]:
            raise ValueError(f"expected one input named 'image', got {list(details)}")
        self.input_dtype = details["image"]["dtype"]
        self.input_shape = tuple(details["image"]["shape"])

    def __call__(self, image):
        """image: [S, S, 3] or [1, S, S, 3] in [0, 255] -> dict of numpy outputs."""
        image = np.asarray(image)
        if image.ndim == 3:
            image = image[None]
        if tuple(image.shape) != self.input_shape:
            raise ValueError(
                f"TFLite model takes {self.input_shape} images, got {image.shape}"
            )
        inference.check_pixels(image)
        if self.input_dtype == np.uint8:
            image = np.clip(np.round(image), 0, 255).astype(np.uint8)
        return self.runner(image=image.astype(self.input_dtype))


def postprocess(
    outputs, image_size, cam_threshold, map_method="cam", topk=1, class_ids=None
):
    """Host-side heat map and box from TFLite outputs (the evaluator's path).

    Args:
        outputs: the LiteRT outputs of one image: "cams" [1, h, w, C],
            "logits" [1, C], "localizer_logits" for SLT-Net; with a
            "heatmap" (and no `class_ids`) only the box is computed here.
        image_size: S.
        cam_threshold: CAM threshold.
        map_method: `localization.MAP_METHODS`; gradient methods raise
            unless the model's own "heatmap" is used (their maps cannot be
            rebuilt from "cams").
        topk: K of the "topk" map.
        class_ids: classes of the "cam" map (e.g. the ground truth for
            GT-known); default the predicted top-1 class.

    Returns:
        (heatmap [S, S] float32 in [0, 1], box [4] xyxy in the S x S frame).
    """
    cam_threshold = localization.check_cam_threshold(cam_threshold, "postprocess")
    if class_ids is None and "heatmap" in outputs:
        # The graph's own map (any map method): only the box step is left.
        heat = np.asarray(outputs["heatmap"], np.float32).reshape(
            np.shape(outputs["heatmap"])[-2:]
        )
        box = boxes_lib.largest_contour_box(heat, cam_threshold)
        return heat, np.asarray(box, np.float32)
    if map_method in localization.GRADIENT_MAP_METHODS:
        need = (
            "the layer's activations"
            if map_method in localization.LAYER_MAP_METHODS_WITHOUT_GRADIENTS
            else "gradients of the model"
        )
        raise ValueError(
            f"map_method={map_method!r} needs {need}; they "
            "cannot be computed from the TFLite outputs (cams, logits)"
            + ("" if "heatmap" in outputs else " and this model has no heatmap")
        )
    tensors = {
        k: tf.constant(np.asarray(v, np.float32).reshape((1,) + np.shape(v)[-3:]))
        if k == "cams"
        else tf.constant(np.asarray(v, np.float32).reshape(1, -1))
        for k, v in outputs.items()
        if k in ("cams", "logits", "localizer_logits")
    }
    localizer = localization.Localizer(
        None, image_size, map_method=map_method, topk=topk
    )
    if class_ids is None:
        class_ids = localizer.predicted_class_ids(tensors)
    class_ids = tf.reshape(tf.constant(class_ids, tf.int32), [-1])
    heat = localizer.maps(None, tensors, class_ids).numpy()[0]
    return heat, np.asarray(
        boxes_lib.largest_contour_box(heat, cam_threshold), np.float32
    )
