"""LiteRT inputs and serving replies are checked: NaN / inf pixels, a CAM
threshold outside [0, 1], a REST reply that is not the predictions JSON."""

import io
import json
import urllib.request

import keras
import numpy as np
import pytest

from wsol_keras.configs import base as config_base
from wsol_keras.export import inference
from wsol_keras.export import tflite_lib
from wsol_keras.export.serving import client
from wsol_keras.models import registry
from wsol_keras.training import trainer

S = 32


@pytest.mark.parametrize("threshold", [1.5, -0.1, float("nan")])
def test_postprocess_refuses_threshold_outside_unit_interval(threshold):
    with pytest.raises(ValueError, match=r"postprocess: cam_threshold=.* is not in \[0, 1\]"):
        tflite_lib.postprocess({"heatmap": np.zeros((1, S, S), np.float32)}, S, threshold)


def test_litert_refuses_nonfinite_pixels():
    keras.utils.set_random_seed(0)
    config = config_base.make_smoke(config_base.base_config())
    config.method = registry.default_method_config("cam")
    config.data.image_size = S
    info = {"num_classes": 4, "class_names": list("abcd"), "hierarchy_sizes": [2, 1], "image_size": S}
    model = trainer.build_compiled_model(config, info)
    content, _ = tflite_lib.convert(inference.InferenceModule(model, config, 0.3), "float32", postprocess="none")
    lite = tflite_lib.LiteRTModel(content)
    image = np.full((S, S, 3), 100.0, np.float32)
    assert np.isfinite(lite(image)["logits"]).all()
    image[3, 5, 1] = np.nan
    image[4, 0, 0] = np.inf
    with pytest.raises(ValueError, match=r"2 NaN / inf pixel value\(s\), first at batch 0, row 3, column 5"):
        lite(image)
    with pytest.raises(ValueError, match="numeric pixels"):
        lite(np.full((S, S, 3), "x"))


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"<html>502 Bad Gateway</html>", r"not JSON .*'<html>502 Bad Gateway"),
        (b'{"error": "Servable not found"}', r"answered with an error: Servable not found"),
        (b'{"outputs": {}}', r'no "predictions" list'),
        (b'{"predictions": [1, 2]}', r'no "predictions" list of per-image objects'),
        (b'[1]', r'no "predictions" list'),
    ],
)
def test_rest_reply_checked(raw, message):
    with pytest.raises(ValueError, match=message):
        client.parse_rest_reply(raw)


def test_client_cli_one_line_on_malformed_reply(tmp_path, monkeypatch, capsys):
    image = tmp_path / "a.jpg"
    image.write_bytes(b"\xff\xd8\xff")

    class Reply(io.BytesIO):
        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: Reply(b'{"predictions": "oops"}'))
    with pytest.raises(SystemExit) as e:
        client.main(["--model_name=m", f"--images={image}"])
    assert str(e.value).startswith('client.py: error: the server\'s reply has no "predictions" list')
    # A good reply still prints the summary.
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: Reply(json.dumps({"predictions": [{"classes": [1]}]}).encode()))
    client.main(["--model_name=m", f"--images={image}"])
    assert json.loads(capsys.readouterr().out) == [{"classes": [1]}]
