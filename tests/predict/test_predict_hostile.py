"""wsol-predict / wsol-score on hostile input: bad flags, stale maps, output
inside the input, EXIF orientation, named pipes, malformed .npy maps."""

import json
import os
import struct
import subprocess
import sys

import cv2
import numpy as np
import pytest
import tensorflow as tf

from wsol_keras.evaluation import score_folder
from wsol_keras.predict import exif
from wsol_keras.predict import image_files
from wsol_keras.predict import main
from wsol_keras.predict import predictors

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
S = 8


def _fake_predictor():
    def fn(images):
        n = int(images.shape[0])
        maps = np.zeros((n, S, S), np.float32)
        maps[:, 2:6, 1:4] = 1.0
        return {
            "class_ids": tf.ones([n], tf.int32),
            "scores": tf.fill([n], 0.75),
            "top5_ids": tf.tile([[1, 0]], [n, 1]),
            "top5_scores": tf.tile([[0.75, 0.25]], [n, 1]),
            "maps": tf.constant(maps),
        }

    return predictors.Predictor(fn, S, ["cat", "dog"], "cam", "", 0.5, "test", "fake")


def _images(root, names):
    for name in names:
        path = os.path.join(root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        assert cv2.imwrite(path, np.full((12, 20, 3), 90, np.uint8))


def _run(root, out, **kwargs):
    paths, image_root = image_files.list_images(str(root), exclude=[str(out)])
    return main.predict_images(_fake_predictor(), paths, image_root, str(out), verbose=False, **kwargs)


@pytest.mark.parametrize("field, value", [("batch_size", 0), ("batch_size", -1), ("max_pixels", 0)])
def test_nonpositive_batch_size_and_max_pixels_are_refused(tmp_path, field, value):
    _images(tmp_path / "im", ["a.png"])
    with pytest.raises(ValueError, match=f"--{field}={value}: must be a positive integer"):
        _run(tmp_path / "im", tmp_path / "out", **{field: value})
    assert not (tmp_path / "out").exists()


def test_cli_batch_size_zero_is_one_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "wsol_keras.predict.main", "--workdir=x", "--batch_size=0",
         f"--images={tmp_path}", f"--output={tmp_path / 'o'}"],
        capture_output=True, text=True, cwd=REPO, timeout=120,
        env=dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    assert proc.returncode != 0 and "batch_size" in proc.stderr and "Traceback" not in proc.stderr


def test_overwrite_with_fewer_images_leaves_no_stale_map(tmp_path):
    _images(tmp_path / "im", ["a.png", "b.png"])
    out = tmp_path / "out"
    _run(tmp_path / "im", out)
    os.remove(tmp_path / "im" / "b.png")
    _run(tmp_path / "im", out, overwrite=True)
    assert sorted(os.listdir(out / "scoremaps")) == ["a.png.npy"]
    assert sorted(os.listdir(out / "overlays")) == ["a.png.png"]
    # A map this tool did not write is never removed: refused, named.
    np.save(out / "scoremaps" / "other.npy", np.zeros((2, 2)))
    with pytest.raises(FileExistsError, match=r"scoremaps/other.npy"):
        _run(tmp_path / "im", out, overwrite=True)


def test_output_inside_the_input_folder_is_not_read(tmp_path):
    _images(tmp_path, ["a.png"])
    out = tmp_path / "out"
    _run(tmp_path, out)
    summary = _run(tmp_path, out, overwrite=True)
    assert summary["num_images"] == 1
    assert sorted(os.listdir(out / "overlays")) == ["a.png.png"]


def test_named_pipe_is_skipped_not_read(tmp_path, caplog):
    _images(tmp_path / "im", ["a.png"])
    os.mkfifo(tmp_path / "im" / "pipe.jpg")
    paths, _ = image_files.list_images(str(tmp_path / "im"))
    assert [os.path.basename(p) for p in paths] == ["a.png"]
    assert "skipped 1 non-regular file(s)" in caplog.text
    with pytest.raises(image_files.ImageError, match="not a regular file"):
        image_files.load_image(str(tmp_path / "im" / "pipe.jpg"), S)
    np.save(tmp_path / "m.npy", np.zeros((2, 2)))
    os.mkfifo(tmp_path / "p.npy")
    with pytest.raises(ValueError, match="p.npy: not a regular file"):
        score_folder.load_scoremap(str(tmp_path), "p", S)


def _with_orientation(jpeg, value):
    """JPEG bytes with an APP1 EXIF segment holding Orientation = value."""
    tiff = b"MM\x00\x2a\x00\x00\x00\x08" + struct.pack(">H", 1)
    tiff += struct.pack(">HHIHH", 0x0112, 3, 1, value, 0) + b"\x00\x00\x00\x00"
    app1 = b"Exif\x00\x00" + tiff
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + jpeg[2:]


@pytest.mark.parametrize("value, op", [(6, lambda a: np.rot90(a, -1)), (3, lambda a: a[::-1, ::-1]), (8, lambda a: np.rot90(a, 1))])
def test_exif_orientation_is_applied(tmp_path, value, op):
    stored = np.zeros((16, 40, 3), np.uint8)  # landscape as stored
    stored[:4, :10] = 255  # a bright top-left corner
    ok, jpeg = cv2.imencode(".jpg", stored, [cv2.IMWRITE_JPEG_QUALITY, 100])
    path = tmp_path / "p.jpg"
    path.write_bytes(_with_orientation(jpeg.tobytes(), value))
    assert exif.jpeg_orientation(path.read_bytes()) == value
    decoded = tf.io.decode_jpeg(jpeg.tobytes(), channels=3).numpy()
    original, resized = image_files.load_image(str(path), S)
    np.testing.assert_array_equal(original, op(decoded))
    assert resized.shape == (S, S, 3)


@pytest.mark.parametrize(
    "write, message",
    [
        (lambda p: p.write_bytes(np.lib.format.magic(1, 0) + b"\x76\x00{'descr': '<f4', 'fortran_order': False, 'shape': (8, 8), }" + b" " * 50 + b"\n" + b"\x00" * 12), r"m.npy: not a readable numpy .npy array"),
        (lambda p: np.save(p, np.array([["a", "b"], ["c", "d"]])), r"m.npy: dtype <U1 is not a real number type"),
        (lambda p: np.save(p, np.zeros((2, 2), [("x", "f4"), ("y", "f4")])), r"m.npy: dtype .* is not a real number type"),
        (lambda p: np.save(p, np.zeros((2, 2), "datetime64[s]")), r"m.npy: dtype datetime64\[s\] is not a real number type"),
        (lambda p: np.save(p, np.full((2, 2), 1 + 2j)), r"m.npy: dtype complex128 is not a real number type"),
        (lambda p: np.save(p, np.array([[0.0, 1e39], [0, 0]])), r"m.npy: values up to 1e\+39 exceed float32's range"),
    ],
)
def test_bad_npy_maps_give_one_line_errors(tmp_path, write, message):
    write(tmp_path / "m.npy")
    with pytest.raises(ValueError, match=message) as e:
        score_folder.load_scoremap(str(tmp_path), "m", S)
    assert "\n" not in str(e.value)
