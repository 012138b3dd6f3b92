"""Released hierarchy formats: DANet's per-image lists, <child> <parent> lists,
and the loud warning when DANet falls back to the name-based hierarchy."""

import logging
import os

import ml_collections
import numpy as np
import pytest

from wsol_keras import data as wdata
from wsol_keras.data import method_checks as checks
from wsol_keras.data import hierarchy as hier
from wsol_keras.data import hierarchy_lists as lists

NAMES = ["001.Black_footed_Albatross", "002.Laysan_Albatross", "003.Groove_billed_Ani", "004.Crested_Auklet"]


def _write(path, lines):
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return str(path)


def _danet_files(d, family, order):
    """Two images per class, in DANet's '<class dir>/<file>.jpg <id>' format."""
    fam = [f"{n}/{n[4:]}_{k}.jpg {family[i]}" for i, n in enumerate(NAMES) for k in (1, 2)]
    ordr = [f"{n}/{n[4:]}_{k}.jpg {order[i]}" for i, n in enumerate(NAMES) for k in (1, 2)]
    return _write(d / "list" / "family_label.txt", fam), _write(d / "list" / "order_label.txt", ordr)


def test_danet_lists_give_class_level_tree(tmp_path):
    # families: albatross 5, albatross 5, ani 9, auklet 7 -> renumbered 0,0,2,1
    # orders: 3, 3, 3, 4 -> 0,0,0,1
    f, o = _danet_files(tmp_path, [5, 5, 9, 7], [3, 3, 3, 4])
    h = hier.resolve_hierarchy([1, 2, 3, 4], NAMES, f"{f},{o}", [])
    np.testing.assert_array_equal(h, [[0, 0], [0, 0], [2, 0], [1, 1]])


def test_danet_lists_match_folder_number_when_names_differ(tmp_path):
    # TFDS caltech_birds2011 names its classes "0".."199": folder 003.* -> label 2.
    f, o = _danet_files(tmp_path, [0, 0, 1, 2], [0, 0, 0, 1])
    h = lists.read_danet_lists([f, o], ["0", "1", "2", "3"])
    np.testing.assert_array_equal(h, [[0, 0], [0, 0], [1, 0], [2, 1]])


def test_danet_list_conflicts_and_gaps_name_file_and_lines(tmp_path):
    p = _write(tmp_path / "fam.txt", [f"{NAMES[0]}/a.jpg 0", f"{NAMES[1]}/b.jpg 0",
                                      f"{NAMES[0]}/c.jpg 1"])
    with pytest.raises(ValueError, match=r"fam\.txt:3: class '001.Black_footed_Albatross' has node 1 here but 0 at line 1"):
        lists.read_danet_level(p, NAMES[:2])
    with pytest.raises(ValueError, match=r"g\.txt: no image of class\(es\) \['002.Laysan_Albatross', '003.Groove_billed_Ani'\] \(2 missing\)"):
        lists.read_danet_level(_write(tmp_path / "g.txt", [f"{NAMES[0]}/a.jpg 0"]), NAMES[:3])
    # A family under two orders is not a tree.
    f, o = _danet_files(tmp_path / "x", [0, 0, 1, 1], [0, 1, 0, 0])
    with pytest.raises(ValueError, match="two parents"):
        lists.read_danet_lists([f, o], NAMES)


def test_parent_list_wordnet_style(tmp_path):
    p = _write(tmp_path / "parents.txt", [
        "# ILSVRC-style synset parents: child parent",
        "n1 p1", "n2 p1", "n3 p2", "n4 r", "p1 r", "p2 r", "n1 other",  # 2nd parent ignored
    ])
    h = hier.resolve_hierarchy([0, 1, 2, 3], ["n1", "n2", "n3", "n4"], p, [])
    # level 1: p1, p1, p2, r -> sorted {p1:0, p2:1, r:2}; level 2: r, r, r, r (root repeats)
    np.testing.assert_array_equal(h, [[0, 0], [0, 0], [1, 0], [2, 0]])
    p3 = _write(tmp_path / "p3.txt", ["# levels: 1", "n1 p1", "n2 p2"])
    np.testing.assert_array_equal(lists.read_parent_list(p3, ["n1", "n2"]), [[0], [1]])
    with pytest.raises(ValueError, match="class 'n9' has no"):
        lists.read_parent_list(p, ["n9"])
    cyc = _write(tmp_path / "cyc.txt", ["a b", "b a"])
    with pytest.raises(ValueError, match="cycle"):
        lists.read_parent_list(cyc, ["a"])


def test_package_format_still_read_and_bad_line_named(tmp_path):
    p = _write(tmp_path / "h.txt", ["1 10 7", "2 11 7"])
    np.testing.assert_array_equal(hier.resolve_hierarchy([1, 2], ["a", "b"], p, []), [[0, 0], [1, 0]])
    bad = _write(tmp_path / "bad.txt", ["a b c"])
    with pytest.raises(ValueError, match=r"bad\.txt:1"):
        hier.resolve_hierarchy([1], ["a"], bad, [])


def test_cub_source_reads_danet_lists_relative_to_root(tmp_path):
    from data.test_data_cub import make_cub

    root = make_cub(tmp_path / "CUB", corrupt=False)
    names = NAMES[:3]
    _write(tmp_path / "CUB" / "list" / "family_label.txt", [f"{n}/x.jpg {v}" for n, v in zip(names, [4, 4, 8])])
    _write(tmp_path / "CUB" / "list" / "order_label.txt", [f"{n}/x.jpg {v}" for n, v in zip(names, [1, 1, 2])])
    c = wdata.default_data_config()
    c.name, c.root, c.image_size = "cub", str(root), 16
    c.hierarchy_file = "list/family_label.txt,list/order_label.txt"
    src = wdata.get_source(c)
    np.testing.assert_array_equal(src.hierarchy, [[0, 0], [0, 0], [1, 1]])
    c.hierarchy_file = "nolist/family_label.txt"
    with pytest.raises(FileNotFoundError, match="xuehaolan/DANet"):
        wdata.get_source(c)


def _danet_cfg():
    return ml_collections.ConfigDict({"method": {"name": "danet"}})


def test_danet_warns_loudly_on_name_fallback(caplog):
    names = NAMES
    info = {"class_names": names, "ancestors": hier.hierarchy_from_names(names).tolist()}
    with caplog.at_level(logging.WARNING):
        checks.check_data_for_method(_danet_cfg(), info)
    assert "NO CLASS HIERARCHY FILE" in caplog.text and "hierarchy_file" in caplog.text
    caplog.clear()
    info["ancestors"] = [[0, 0], [1, 0], [1, 0], [2, 1]]  # differs from the name fallback
    with caplog.at_level(logging.WARNING):
        checks.check_data_for_method(_danet_cfg(), info)
    assert "NO CLASS HIERARCHY FILE" not in caplog.text


def test_danet_config_uses_the_released_lists():
    from wsol_keras.configs import cub_vgg16_danet

    c = cub_vgg16_danet.get_config()
    assert c.data.hierarchy_file == "list/family_label.txt,list/order_label.txt"
