"""One set of data checks for every file source (CUB, wsolevaluation
metadata, VOC folder) and for wsol-predict's image folders: paths confined
to the root with symlinks resolved, duplicates refused naming both lines,
boxes beyond the image clipped with a count (or refused), classes without
training images refused, mask sizes checked, non-regular files skipped with
a count, decode errors naming the file, and a data set fingerprint."""

import contextlib
import logging
import os
import threading

import numpy as np
import pytest

from tests.data import test_data_cub as cub_t
from tests.data import test_data_voc as voc_t
from tests.data import test_data_wsol_metadata as meta_t
from wsol_keras import data as wdata


@contextlib.contextmanager
def no_hang(fifo, seconds=20):
    """Unblocks a reader stuck on ``fifo`` after ``seconds`` (it then reads an
    empty file), so code that opens it fails the test instead of hanging."""
    done = threading.Event()

    def release():
        if not done.wait(seconds):
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK) if _has_reader(fifo) else None
            if fd is not None:
                os.close(fd)

    t = threading.Thread(target=release, daemon=True)
    t.start()
    try:
        yield
    finally:
        done.set()
        t.join()


def _has_reader(fifo):
    try:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        return True
    except OSError:  # ENXIO: nobody reads it
        return False


def _outside_file(tmp_path, name="outside.png"):
    out = tmp_path / "elsewhere"
    out.mkdir(exist_ok=True)
    p = out / name
    p.write_bytes(cub_t._png(np.zeros((20, 30, 3), np.uint8)))
    return p


# ------------------------------------------------------------- confinement
def test_cub_symlink_leaving_the_root_is_refused(tmp_path):
    root = cub_t.make_cub(str(tmp_path / "CUB"), corrupt=False)
    target = os.path.join(root, "images", "001.Black_footed_Albatross", "a_1.png")
    os.remove(target)
    os.symlink(_outside_file(tmp_path), target)
    with pytest.raises(ValueError, match=r"images\.txt:1: .*a_1\.png.*outside"):
        wdata.get_source(cub_t._config(root))
    # allowed on request
    src = wdata.get_source(cub_t._config(root, allow_outside_root=True))
    assert src.num_examples("train") == 4


def test_cub_symlink_inside_the_root_is_accepted(tmp_path):
    root = cub_t.make_cub(str(tmp_path / "CUB"), corrupt=False)
    folder = os.path.join(root, "images", "001.Black_footed_Albatross")
    os.rename(os.path.join(folder, "a_1.png"), os.path.join(root, "a_1_real.png"))
    os.symlink(os.path.join(root, "a_1_real.png"), os.path.join(folder, "a_1.png"))
    assert wdata.get_source(cub_t._config(root)).num_examples("train") == 4


def test_metadata_symlinked_folder_leaving_the_root_is_refused(tmp_path):
    root, meta = meta_t.make_boxes_dataset(tmp_path)
    outside = tmp_path / "elsewhere_a"
    os.rename(root / "a", outside)
    os.symlink(outside, root / "a")
    with pytest.raises(ValueError, match=r"train/image_ids\.txt:1: .*outside"):
        wdata.get_source(meta_t._config(root, meta))


@pytest.mark.parametrize("bad", ["../../x", "/abs/x"])
def test_voc_ids_leaving_the_root_are_refused(tmp_path, bad):
    root = voc_t.make_voc(tmp_path, voc_t.IMAGES, {"trainval": ["000001", bad], "test": ["000003"]})
    with pytest.raises(ValueError, match=r"trainval\.txt:2: .*outside"):
        wdata.get_source(voc_t._cfg(root))


def test_voc_duplicate_id_names_both_lines(tmp_path):
    root = voc_t.make_voc(
        tmp_path, voc_t.IMAGES, {"trainval": ["000001", "000002", "000001"], "test": ["000003"]}
    )
    with pytest.raises(ValueError, match=r"trainval\.txt:3: .*000001.*line 1"):
        wdata.get_source(voc_t._cfg(root))


# ------------------------------------------------------------- boxes
def test_voc_box_beyond_the_image_is_clipped_with_a_count(tmp_path, caplog):
    images = dict(voc_t.IMAGES)
    images["000001"] = (100, 50, [("dog", 0, (10, 5, 160, 45))])  # xmax > width 100
    root = voc_t.make_voc(tmp_path, images, {"trainval": ["000001", "000002"], "test": ["000003"]})
    src = wdata.get_source(voc_t._cfg(root))
    with caplog.at_level(logging.WARNING):
        boxes = [a["boxes"] for a in src.annotations("train")]
    assert boxes[0].tolist() == [[10, 5, 100, 45]]
    assert "clipped 1 box" in caplog.text and "000001.xml" in caplog.text
    with pytest.raises(ValueError, match=r"000001\.xml.*outside the image.*strict_boxes"):
        wdata.get_source(voc_t._cfg(root, strict_boxes=True)).annotations("train")


# ------------------------------------------------------------- decoding
def test_voc_corrupt_jpeg_is_named_not_a_crash_mid_epoch(tmp_path, caplog):
    root = voc_t.make_voc(tmp_path, voc_t.IMAGES, {"trainval": ["000001", "000002"], "test": ["000003"]})
    with open(os.path.join(root, "JPEGImages", "000002.jpg"), "wb") as f:
        f.write(b"\xff\xd8\xff not a jpeg")
    src = wdata.get_source(voc_t._cfg(root))
    with caplog.at_level(logging.WARNING):
        assert src.num_examples("train") == 1
    assert src.num_skipped("train") == 1 and "000002.jpg" in caplog.text
    assert len(list(src.dataset("train"))) == 1
    with pytest.raises(ValueError, match=r"000002\.jpg.*trainval\.txt:2"):
        wdata.get_source(voc_t._cfg(root, fatal_decode_errors=True)).num_examples("train")


# ------------------------------------------------------------- classes
def _cub_split(root, flags):
    with open(os.path.join(root, "train_test_split.txt"), "w") as f:
        f.writelines(f"{i + 1} {v}\n" for i, v in enumerate(flags))


def test_cub_class_without_training_image_is_refused(tmp_path):
    root = cub_t.make_cub(str(tmp_path / "CUB"), corrupt=False)
    _cub_split(root, [1, 1, 0, 1, 1, 0])  # class 2 (b_1, b_2) only in test
    with pytest.raises(ValueError, match=r"classes\.txt:2: class 002\.Laysan_Albatross has no training image"):
        wdata.get_source(cub_t._config(root))


def test_cub_without_any_training_image_is_refused(tmp_path):
    root = cub_t.make_cub(str(tmp_path / "CUB"), corrupt=False)
    _cub_split(root, [0, 0, 0, 0, 0, 0])
    with pytest.raises(ValueError, match=r"no training image"):
        wdata.get_source(cub_t._config(root))


# ------------------------------------------------------------- masks
def test_mask_of_the_wrong_size_is_refused_naming_it(tmp_path):
    root, meta = meta_t.make_mask_dataset(tmp_path)
    meta_t._img(root / "masks" / "x_2.png", np.zeros((8, 8), np.uint8))  # image is 16 x 16
    src = wdata.get_source(meta_t._config(root, meta))
    with pytest.raises(ValueError, match=r"x_2\.png.*localization\.txt:2.*8 x 8.*16 x 16"):
        src.num_examples("val")


# ------------------------------------------------------------- non-regular files
def test_fifo_listed_as_image_is_skipped_with_a_count(tmp_path, caplog):
    root = cub_t.make_cub(str(tmp_path / "CUB"), corrupt=False)
    target = os.path.join(root, "images", "003.Groove_billed_Ani", "c_2.jpg")
    os.remove(target)
    os.mkfifo(target)
    with no_hang(target), caplog.at_level(logging.WARNING):
        src = wdata.get_source(cub_t._config(root))
        assert src.num_examples("test") == 1  # b_1 kept, c_2 (the FIFO) skipped
    assert "1 non-regular" in caplog.text and "c_2.jpg" in caplog.text


def test_fifo_in_predict_folder_is_skipped_with_a_count(tmp_path, caplog):
    from wsol_keras.predict import image_files

    (tmp_path / "a.png").write_bytes(cub_t._png(np.zeros((4, 4, 3), np.uint8)))
    os.mkfifo(tmp_path / "pipe.png")
    with no_hang(str(tmp_path / "pipe.png")), caplog.at_level(logging.WARNING):
        paths, _ = image_files.list_images(str(tmp_path))
    assert [os.path.basename(p) for p in paths] == ["a.png"]
    assert "1 non-regular" in caplog.text and "pipe.png" in caplog.text


# ------------------------------------------------------------- fingerprint
def test_fingerprint_changes_when_images_are_added(tmp_path):
    root = voc_t.make_voc(tmp_path, voc_t.IMAGES, {"trainval": ["000001"], "test": ["000003"]})
    before = wdata.get_source(voc_t._cfg(root)).fingerprint()
    assert before == wdata.get_source(voc_t._cfg(root)).fingerprint()
    voc_t.make_voc(tmp_path, voc_t.IMAGES, {"trainval": ["000001", "000002"], "test": ["000003"]})
    assert wdata.get_source(voc_t._cfg(root)).fingerprint() != before

    croot = cub_t.make_cub(str(tmp_path / "CUB"), corrupt=False)
    a = wdata.get_source(cub_t._config(croot)).fingerprint()
    with open(os.path.join(croot, "bounding_boxes.txt"), "a") as f:
        pass
    assert wdata.get_source(cub_t._config(croot)).fingerprint() == a
    _cub_split(croot, [1, 1, 1, 1, 0, 1])
    assert wdata.get_source(cub_t._config(croot)).fingerprint() != a


def test_resume_on_changed_data_is_refused_unless_allowed(tmp_path):
    from wsol_keras.configs import base
    from wsol_keras.training import trainer
    from wsol_keras.training import workdir

    root = voc_t.make_voc(tmp_path / "voc", voc_t.IMAGES, {"trainval": ["000001"], "test": ["000003"]})
    src = wdata.get_source(voc_t._cfg(root))
    config = base.make_smoke(base.base_config())
    info = trainer.data_info_of(src, config)
    assert info["data_fingerprint"] == src.fingerprint()
    wd = str(tmp_path / "run")
    os.makedirs(wd)
    workdir.write_config(wd, config, info)
    workdir.check_rerun_config(wd, config, dict(info))  # same data: fine
    changed = dict(info, data_fingerprint="0" * 16)
    with pytest.raises(ValueError, match=r"data set .*changed.*allow_data_change"):
        workdir.check_rerun_config(wd, config, changed)
    config.data.allow_data_change = True
    workdir.check_rerun_config(wd, config, changed)  # allowed explicitly
    # a workdir written before fingerprints existed resumes
    config.data.allow_data_change = False
    old = dict(info)
    del old["data_fingerprint"]
    workdir.write_config(wd, config, old, keep_previous=True)
    workdir.check_rerun_config(wd, config, info)
