"""The inference graph every export runs (TF Model Garden `export_base` style).

One `InferenceModule` per exported model holds the whole request path:

    checks from each image's header (`request_checks`: format, truncation,
    a pixel limit) -> decode -> the data pipeline's own resize to S x S
    (`wsol_keras.data.pipeline.resize_image`, no copy) -> the model (its
    backbone normalization is a layer inside it) -> `wsol_keras.localization.maps`
    (the evaluator's map path, top-1 predicted class) -> top-K classes ->
    box of the largest connected component above the CAM threshold
    (`wsol_keras.localization.boxes.tf_largest_component_box`, pure TF ops, equal to the
    evaluator's cv2 path), or the model's own regressor box (SLT-Net).

Entry points built from that one graph:
    * ``image_bytes`` (also ``serving_default``): ``images`` string [B],
      encoded JPEG / PNG / GIF / BMP / WebP images, each of its own size;
    * ``image_tensor``: ``images`` uint8 [B, H, W, 3] RGB;

    (both signatures accept any shape, so that another one is refused with a
    message naming it);
    * `tflite_function`: a fixed-size ``image`` [1, S, S, 3] signature for
      the TFLite converter (already resized: the on-device caller resizes).

The SavedModel signatures return
    * ``classes`` int32 [B, K]: the top-K class ids, best first;
    * ``scores`` float32 [B, K]: their softmax probabilities;
    * ``boxes`` float32 [B, 4]: the object box, absolute pixel xyxy in each
      *original* image (before the resize to S x S);
    * ``heatmaps`` float32 [B, M, M]: the localization map in [0, 1] at a fixed
      size M (default S, the model's input size).

Box coordinates: a box in the S x S frame (evaluator convention, see
`wsol_keras.localization.boxes.reference`) maps to the original W x H image by multiplying
x by W / S and y by H / S, the inverse of the data pipeline's `scale_boxes`.
Normalized regressor boxes ``n`` are first mapped to ``n * (S - 1)`` as in the
evaluator.
"""

import numpy as np
import tensorflow as tf

from wsol_keras.localization import boxes as boxes_lib
from wsol_keras.localization import primitives as cams_lib
from wsol_keras.localization import maps as localization
from wsol_keras.data.pipeline import resize_image
from wsol_keras.export import request_checks

DEFAULT_TOP_K = 5
OUTPUT_KEYS = ("classes", "scores", "boxes", "heatmaps")
POSTPROCESS_LEVELS = ("box", "heatmap", "none")

# Largest H x W of one request image (the model card records the exported
# value): 50 Mpixel decodes to 150 MB of uint8, well past any camera photo a
# localization model is served, far below a decompression bomb's gigabytes.
DEFAULT_MAX_IMAGE_PIXELS = 50_000_000


def decode_images(encoded, image_size, max_pixels=DEFAULT_MAX_IMAGE_PIXELS):
    """string [B] -> (uint8 [B, S, S, 3], int32 [B, 2] original (H, W)).

    Every element is checked from its header before it is decoded
    (`request_checks.check_encoded_image`): an empty batch, an empty string,
    bytes that are not an image, a truncated image, a header of 0 pixels or
    one over ``max_pixels`` raise InvalidArgumentError naming the batch
    position (``images[i]``) and the size, in ASCII.
    """
    s = int(image_size)

    def one(args):
        index, data = args
        check, _, _ = request_checks.check_encoded_image(data, index, max_pixels)
        with tf.control_dependencies([check]):
            image = tf.io.decode_image(
                data, channels=3, expand_animations=False, dtype=tf.uint8
            )
        return resize_image(image, s), tf.shape(image)[:2]

    with tf.control_dependencies([request_checks.check_encoded_batch(encoded)]):
        encoded = tf.ensure_shape(tf.identity(encoded), [None])
    n = tf.shape(encoded)[0]
    return tf.map_fn(
        one,
        (tf.range(n), encoded),
        fn_output_signature=(
            tf.TensorSpec([s, s, 3], tf.uint8),
            tf.TensorSpec([2], tf.int32),
        ),
    )


class InferenceModule:
    """The inference graph of a trained model, for every export format.

    Args:
        model: a `WSOLModel` (outputs "logits", "cams", optional "boxes").
        config: its experiment ConfigDict (``data.image_size``, ``eval``: the
            map method is the evaluated one).
        cam_threshold: threshold of the in-graph box step, in [0, 1].
        top_k: number of classes returned (capped at the number of classes).
        heatmap_size: side M of the returned heat maps (default S).
        max_image_pixels: largest H x W of a request image; larger ones are
            rejected from their header, before decoding.

    Attributes:
        image_size: S.
        localizer: the `wsol_keras.localization.maps.Localizer` of the evaluator.
        image_bytes, image_tensor: tf.functions with fixed input signatures.
    """

    def __init__(
        self,
        model,
        config,
        cam_threshold,
        top_k=DEFAULT_TOP_K,
        heatmap_size=None,
        max_image_pixels=DEFAULT_MAX_IMAGE_PIXELS,
    ):
        self.model = model
        self.config = config
        self.image_size = int(config.data.image_size)
        self.cam_threshold = localization.check_cam_threshold(
            cam_threshold, "cam_threshold"
        )
        if int(top_k) < 1:
            raise ValueError(f"top_k={top_k}: must be >= 1")
        self.top_k = int(top_k)
        self.heatmap_size = int(heatmap_size or self.image_size)
        if self.heatmap_size < 1:
            raise ValueError(f"heatmap_size={heatmap_size}: must be >= 1")
        if int(max_image_pixels) < 1:
            raise ValueError(f"max_image_pixels={max_image_pixels}: must be >= 1")
        self.max_image_pixels = int(max_image_pixels)
        # One eager call creates every variable (subclassed models build
        # lazily), so the exported graphs capture only tracked variables.
        model(tf.zeros([1, self.image_size, self.image_size, 3]), training=False)
        self.localizer = localization.Localizer.from_config(model, config)
        # Both signatures accept any shape so that a wrong one (one string or
        # one [H, W, 3] image instead of a batch, 4 channels, 0 x 0, an empty
        # batch) gets a message naming it rather than a kernel error deep in
        # the graph; the contracts stay string [B] and uint8 [B, H, W, 3]
        # (`request_checks.check_encoded_batch`, `check_image_tensor`).
        self.image_bytes = tf.function(
            self._image_bytes,
            input_signature=[tf.TensorSpec(None, tf.string, name="images")],
        )
        self.image_tensor = tf.function(
            self._image_tensor,
            input_signature=[tf.TensorSpec(None, tf.uint8, name="images")],
        )

    # -- the shared graph ----------------------------------------------------------

    def localize(self, images, box_step=True, float64_quantization=True):
        """Model + map (+ box) on images already resized to S x S.

        Args:
            images: uint8 or float [B, S, S, 3] in [0, 255].
            box_step: compute "box_s" (else only the regressor's, if any).
            float64_quantization: see `boxes.tf_largest_component_box` (False
                for TFLite, which has no float64).

        Returns:
            dict: "outputs" (the model's), "logits" [B, C], "heatmap"
            [B, S, S] in [0, 1] (the evaluator's map of the predicted class)
            and "box_s" float32 [B, 4] xyxy in the S x S frame.
        """
        s = self.image_size
        x = tf.cast(images, tf.float32)
        result = self.localizer(x)
        out = {
            "outputs": result["outputs"],
            "logits": result["logits"],
            "heatmap": result["maps"],
        }
        if "boxes" in result:
            out["box_s"] = tf.clip_by_value(result["boxes"], 0.0, 1.0) * float(s - 1)
        elif box_step:
            out["box_s"] = boxes_lib.tf_largest_component_box(
                result["maps"],
                self.cam_threshold,
                float64_quantization=float64_quantization,
            )
        return out

    def serve(self, images, original_hw):
        """The SavedModel outputs (`OUTPUT_KEYS`) of resized images.

        Args:
            images: uint8 or float [B, S, S, 3] in [0, 255].
            original_hw: int [B, 2] (H, W) of each original image.
        """
        s = self.image_size
        out = self.localize(images)
        logits = out["logits"]
        k = min(self.top_k, int(logits.shape[-1]))
        top = tf.math.top_k(tf.nn.softmax(logits), k=k)
        hw = tf.cast(original_hw, tf.float32)
        scale = tf.stack([hw[:, 1], hw[:, 0], hw[:, 1], hw[:, 0]], axis=1) / float(s)
        heat = out["heatmap"]
        if self.heatmap_size != s:
            heat = tf.clip_by_value(
                cams_lib.upsample_maps(heat, self.heatmap_size), 0, 1
            )
        return {
            "classes": tf.cast(top.indices, tf.int32),
            "scores": top.values,
            "boxes": out["box_s"] * scale,
            "heatmaps": heat,
        }

    def _image_bytes(self, images):
        resized, hw = decode_images(images, self.image_size, self.max_image_pixels)
        return self.serve(resized, hw)

    def _image_tensor(self, images):
        check = request_checks.check_image_tensor(images, self.max_image_pixels)
        with tf.control_dependencies([check]):
            images = tf.ensure_shape(tf.identity(images), [None, None, None, 3])
        shape = tf.shape(images)
        hw = tf.tile(shape[1:3][None], [shape[0], 1])
        return self.serve(resize_image(images, self.image_size), hw)

    # -- TFLite ----------------------------------------------------------------------

    def tflite_function(self, postprocess="box", input_dtype=tf.float32):
        """The fixed-size signature the TFLite converter takes.

        Args:
            postprocess: "box" (also return "heatmap" and "box"), "heatmap"
                (only "heatmap") or "none" (logits and cams only). Models with
                a box regressor always return its "box".
            input_dtype: tf.float32 or tf.uint8 (full-integer variant).

        Returns:
            tf.function with input ``image`` [1, S, S, 3] returning "logits",
            "cams", "localizer_logits" (models that have them) and, per
            `postprocess`, "heatmap" [1, S, S] and "box" [1, 4] (xyxy in the
            S x S frame).
        """
        if postprocess not in POSTPROCESS_LEVELS:
            raise ValueError(
                f"postprocess={postprocess!r}: expected one of {POSTPROCESS_LEVELS}"
            )
        s = self.image_size

        def fn(image):
            if postprocess == "none":
                x = tf.cast(image, tf.float32)
                outputs = self.model(x, training=False)
                result = {"logits": tf.cast(outputs["logits"], tf.float32)}
                if "boxes" in outputs:
                    box = tf.clip_by_value(tf.cast(outputs["boxes"], tf.float32), 0, 1)
                    result["box"] = box * float(s - 1)
            else:
                out = self.localize(
                    image, box_step=postprocess == "box", float64_quantization=False
                )
                outputs = out["outputs"]
                result = {"logits": out["logits"], "heatmap": out["heatmap"]}
                if "box_s" in out:
                    result["box"] = out["box_s"]
            # What the host needs to rebuild the map (`tflite_lib.postprocess`):
            # the class maps and the logits that rank the top-K classes.
            result["cams"] = tf.cast(outputs["cams"], tf.float32)
            if "localizer_logits" in outputs:
                result["localizer_logits"] = tf.cast(
                    outputs["localizer_logits"], tf.float32
                )
            return result

        return tf.function(
            fn, input_signature=[tf.TensorSpec([1, s, s, 3], input_dtype, name="image")]
        )


def check_pixels(images):
    """Raises ValueError unless `images` [B, H, W, C] are finite real numbers
    (a NaN pixel would give NaN scores and a box from nothing); names the
    first bad batch position, row and column."""
    images = np.asarray(images)
    if images.dtype.kind not in "biuf":
        raise ValueError(f"the model takes numeric pixels, got dtype {images.dtype}")
    if images.dtype.kind == "f" and not np.isfinite(images).all():
        bad = np.argwhere(~np.isfinite(images))[0]
        raise ValueError(
            f"{int((~np.isfinite(images)).sum())} NaN / inf pixel value(s), first at "
            f"batch {bad[0]}, row {bad[1]}, column {bad[2]}; pixels must be finite "
            "values in [0, 255]"
        )
