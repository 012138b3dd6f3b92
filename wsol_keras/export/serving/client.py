r"""Builds TF Serving requests for a wsol-export SavedModel (REST JSON and gRPC).

    # after `docker run ... tensorflow/serving` (see README.md here)
    python export/serving/client.py --model_name=cam_small_cnn \
        --images=cat.jpg,dog.png                          # REST, port 8501
    python export/serving/client.py --model_name=cam_small_cnn \
        --images=cat.jpg --protocol=grpc --port=8500      # gRPC

Signatures (see `wsol_keras.export.inference`): ``image_bytes`` (= ``serving_default``)
takes ``images`` string [B] of encoded images; ``image_tensor`` takes
``images`` uint8 [B, H, W, 3]. Both return ``classes``, ``scores``, ``boxes``
(xyxy pixels of each original image) and ``heatmaps``.

REST: binary strings travel as ``{"b64": ...}`` (TF Serving's JSON rule for
DT_STRING). gRPC: a `tensorflow_serving.apis.predict_pb2.PredictRequest` from the
``tensorflow-serving-api`` package (install it with ``pip install
wsol_keras[serving]``); only `build_grpc_request` and `predict_grpc` need it.
"""

import argparse
import base64
import json
import urllib.request

import numpy as np

INPUT_NAME = "images"
BYTES_SIGNATURE = "image_bytes"
TENSOR_SIGNATURE = "image_tensor"


def _check_signature(signature_name, images):
    if signature_name in (BYTES_SIGNATURE, "serving_default"):
        if not all(isinstance(b, (bytes, bytearray)) for b in images):
            raise TypeError(
                f"signature {signature_name!r} takes encoded image bytes; got "
                f"{[type(b).__name__ for b in images][:4]}"
            )
        return [bytes(b) for b in images]
    if signature_name == TENSOR_SIGNATURE:
        array = np.asarray(images)
        if array.dtype != np.uint8 or array.ndim != 4 or array.shape[-1] != 3:
            raise ValueError(
                f"signature {signature_name!r} takes uint8 [B, H, W, 3]; got "
                f"{array.dtype} {array.shape}"
            )
        return array
    raise ValueError(
        f"unknown signature {signature_name!r}; expected {BYTES_SIGNATURE}, "
        f"serving_default or {TENSOR_SIGNATURE}"
    )


def build_rest_body(images, signature_name=BYTES_SIGNATURE):
    """The JSON body of a REST ``:predict`` call (row format, "instances").

    Args:
        images: list of encoded image bytes (image_bytes / serving_default) or a
            uint8 [B, H, W, 3] array (image_tensor).
        signature_name: the SavedModel signature.

    Returns:
        A JSON-serializable dict.
    """
    images = _check_signature(signature_name, images)
    if isinstance(images, np.ndarray):
        instances = images.tolist()
    else:
        instances = [{"b64": base64.b64encode(b).decode("ascii")} for b in images]
    return {"signature_name": signature_name, "instances": instances}


def rest_url(host, port, model_name, version=None):
    """``http://host:port/v1/models/<name>[/versions/<v>]:predict``."""
    path = f"/v1/models/{model_name}"
    if version is not None:
        path += f"/versions/{int(version)}"
    return f"http://{host}:{port}{path}:predict"


def predict_rest(
    images,
    model_name,
    host="localhost",
    port=8501,
    version=None,
    signature_name=BYTES_SIGNATURE,
    timeout=30.0,
):
    """POSTs a REST predict call; returns the decoded "predictions" list."""
    body = json.dumps(build_rest_body(images, signature_name)).encode("utf-8")
    request = urllib.request.Request(
        rest_url(host, port, model_name, version),
        data=body,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return parse_rest_reply(response.read())


def parse_rest_reply(raw):
    """The "predictions" list of a REST reply; ValueError saying what is wrong.

    TF Serving answers ``{"predictions": [{output: value, ...}, ...]}`` (row
    format) or ``{"error": "..."}``; anything else (a proxy's HTML page, a
    truncated body) is reported with the start of the reply.
    """
    start = raw[:120].decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)[:120]
    try:
        reply = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"the server's reply is not JSON ({e}): {start!r}") from None
    if isinstance(reply, dict) and isinstance(reply.get("error"), str):
        raise ValueError(f"the server answered with an error: {reply['error'][:300]}")
    predictions = reply.get("predictions") if isinstance(reply, dict) else None
    if not isinstance(predictions, list) or not all(isinstance(r, dict) for r in predictions):
        raise ValueError(
            "the server's reply has no \"predictions\" list of per-image objects "
            f"(row format): {start!r}"
        )
    return predictions


def build_grpc_request(
    images, model_name, signature_name=BYTES_SIGNATURE, version=None
):
    """A `PredictRequest` protocol buffer for the exported signature.

    Args:
        images: as in `build_rest_body`.
        model_name: served model name (the folder under the model base path).
        signature_name: the SavedModel signature.
        version: optional model version.

    Returns:
        tensorflow_serving.apis.predict_pb2.PredictRequest.
    """
    from tensorflow.core.framework import (
        tensor_pb2,
    )  # pylint: disable=g-import-not-at-top
    from tensorflow.core.framework import (
        tensor_shape_pb2,
    )  # pylint: disable=g-import-not-at-top
    from tensorflow.core.framework import (
        types_pb2,
    )  # pylint: disable=g-import-not-at-top
    from tensorflow_serving.apis import (
        predict_pb2,
    )  # pylint: disable=g-import-not-at-top

    images = _check_signature(signature_name, images)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    if version is not None:
        request.model_spec.version.value = int(version)
    if isinstance(images, np.ndarray):
        proto = tensor_pb2.TensorProto(
            dtype=types_pb2.DT_UINT8, tensor_content=images.tobytes()
        )
        dims = images.shape
    else:
        proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, string_val=images)
        dims = (len(images),)
    proto.tensor_shape.CopyFrom(
        tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=int(d)) for d in dims]
        )
    )
    request.inputs[INPUT_NAME].CopyFrom(proto)
    return request


def predict_grpc(
    images,
    model_name,
    host="localhost",
    port=8500,
    version=None,
    signature_name=BYTES_SIGNATURE,
    timeout=30.0,
):
    """Calls PredictionService/Predict; returns dict name -> numpy array."""
    import grpc  # pylint: disable=g-import-not-at-top
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    from tensorflow_serving.apis import (
        prediction_service_pb2_grpc,
    )  # pylint: disable=g-import-not-at-top

    request = build_grpc_request(images, model_name, signature_name, version)
    with grpc.insecure_channel(f"{host}:{port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response = stub.Predict(request, timeout=timeout)
    return {k: tf.make_ndarray(v) for k, v in response.outputs.items()}


def build_parser():
    parser = argparse.ArgumentParser(
        prog="client.py", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--model_name", required=True)
    parser.add_argument("--images", required=True, help="comma-separated files")
    parser.add_argument("--host", default="localhost")
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--version", type=int, default=None)
    parser.add_argument("--protocol", choices=("rest", "grpc"), default="rest")
    parser.add_argument(
        "--heatmaps",
        action="store_true",
        help="include the full heat maps in the printed JSON (default: only "
        "their shape; classes, scores and boxes always)",
    )
    parser.add_argument(
        "--traceback", action="store_true", help="full traceback on errors"
    )
    return parser


def summarize(predictions, heatmaps=False):
    """Per image: classes, scores, boxes and the heat map (or its shape)."""
    if isinstance(predictions, dict):  # gRPC: name -> [B, ...] arrays
        names = sorted(predictions)
        n = len(predictions[names[0]]) if names else 0
        predictions = [{k: predictions[k][i] for k in names} for i in range(n)]
    out = []
    for row in predictions:
        row = {k: np.asarray(v).tolist() for k, v in row.items()}
        if not heatmaps and "heatmaps" in row:
            row["heatmaps"] = {"shape": list(np.shape(row["heatmaps"]))}
        out.append(row)
    return out


def _connection_error(error):
    """A one-line reason when the server cannot be reached, else None."""
    import urllib.error  # pylint: disable=g-import-not-at-top

    if isinstance(error, urllib.error.HTTPError):
        detail = error.read().decode("utf-8", "replace").strip()[:300]
        return f"HTTP {error.code} from the server: {detail or error.reason}"
    if isinstance(error, urllib.error.URLError):
        return f"no TF Serving REST server reachable ({error.reason})"
    if isinstance(error, (ConnectionError, TimeoutError)):
        return f"no server reachable ({error})"
    code = getattr(error, "code", None)  # grpc.RpcError
    if callable(code) and hasattr(error, "details"):
        return f"gRPC {code().name}: {error.details()}"
    return None


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        port = args.port
        images = []
        for path in args.images.split(","):
            with open(path, "rb") as f:
                images.append(f.read())
        if args.protocol == "rest":
            port = args.port or 8501
            out = predict_rest(images, args.model_name, args.host, port, args.version)
        else:
            port = args.port or 8500
            out = predict_grpc(images, args.model_name, args.host, port, args.version)
    except Exception as error:  # pylint: disable=broad-except
        reason = _connection_error(error)
        if reason is not None:
            reason += (
                f" [{args.protocol} {args.host}:{port}, model {args.model_name!r}]"
            )
        elif isinstance(error, (OSError, ValueError, TypeError)):
            reason = str(error)  # an unreadable image file, a bad argument
        if reason is None or args.traceback:
            raise
        raise SystemExit(f"client.py: error: {reason} (--traceback for details)")
    print(json.dumps(summarize(out, args.heatmaps)))


if __name__ == "__main__":
    main()
