"""Errors a new user meets, each one line that says what to do: offline
ImageNet weights in wsol-predict, missing data with where to get it, and
undecodable images without TensorFlow's op wrapping."""

import urllib.error

import pytest

from wsol_keras import data as wdata
from wsol_keras.predict import image_files
from wsol_keras.predict import predictors


def test_predict_offline_imagenet_weights_names_the_fix(monkeypatch, tmp_path):
    from keras.src.utils import file_utils

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(file_utils, "urlretrieve", offline)
    monkeypatch.setattr(file_utils.config, "keras_home", lambda: str(tmp_path))
    with pytest.raises(OSError) as info:
        predictors.keras_application("MobileNetV2", "imagenet", 96)
    message = str(info.value)
    assert "\n" not in message
    assert "--weights=/path/to/" in message and "--weights=none" in message
    assert "name resolution" in message


def _source(**fields):
    cfg = wdata.default_data_config()
    cfg.update(fields)
    return wdata.get_source(cfg)


def test_missing_cub_says_where_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        _source(name="cub", root=str(tmp_path))  # a folder, but not CUB
    assert "CUB_200_2011.tgz" in str(info.value)
    assert "caltech.edu" in str(info.value)


def test_missing_wsol_metadata_says_where_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        _source(name="wsol_metadata", root=str(tmp_path),
                metadata=str(tmp_path / "metadata" / "CUB"))
    assert "github.com/clovaai/wsolevaluation" in str(info.value)
    with pytest.raises(FileNotFoundError) as info:
        _source(name="wsol_metadata", root=str(tmp_path / "nope"), metadata="x")
    assert "image-net.org" in str(info.value)


def test_decode_errors_carry_no_tensorflow_internals(tmp_path):
    import cv2
    import numpy as np

    ok, jpeg = cv2.imencode(".jpg", np.full((16, 16, 3), 90, np.uint8))
    bad = tmp_path / "bad.jpg"  # a valid header, half the data
    bad.write_bytes(jpeg.tobytes()[: len(jpeg.tobytes()) // 2])
    with pytest.raises(image_files.ImageError) as info:
        image_files.load_image(str(bad), 32)
    message = str(info.value)
    assert "function_node" not in message and "[Op:" not in message
    assert message.startswith(f"{bad}: cannot decode (") and "JPEG" in message


def test_skipped_training_image_reason_carries_no_tensorflow_internals(tmp_path, caplog):
    import cv2
    import numpy as np

    for name in ("a", "b"):
        (tmp_path / "d" / name).mkdir(parents=True)
        for i in range(2):
            assert cv2.imwrite(str(tmp_path / "d" / name / f"{i}.png"),
                               np.full((8, 8, 3), 100 * i, np.uint8))
    (tmp_path / "d" / "a" / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    src = _source(name="folder", root=str(tmp_path / "d"), image_size=8,
                  val_fraction=0.0, test_fraction=0.0, fatal_decode_errors=True)
    with pytest.raises(ValueError) as info:
        src.num_examples("train")
    message = str(info.value)
    assert "broken.jpg" in message
    assert "function_node" not in message and "[Op:" not in message
