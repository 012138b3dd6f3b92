"""wsol-export faults: a killed --overwrite keeps a servable version; leftovers
of killed runs are removed; names and outputs that would write elsewhere are
refused (hostile-input issue, "Data lost" and "Crashes without a clear message").

The kill is real: a forked child process runs the version swap and dies with
``os._exit`` (no cleanup handlers, no ``finally``) at each step.
"""

import os
import time

import pytest
import tensorflow as tf

from wsol_keras.training import temp_files
from wsol_keras.export import saved_model_lib


def tiny_saved_model(path, value):
    root = tf.Module()
    root.f = tf.function(lambda: tf.constant(value), input_signature=[])
    tf.saved_model.save(root, path)


def served_value(version_dir):
    return float(tf.saved_model.load(version_dir).f())


def kill_child_at(point, model_dir, new_model, exchange=True):
    """Forks; the child stages `new_model` and swaps it in, dying at `point`."""
    pid = os.fork()
    if pid == 0:  # the child: never returns
        try:
            import shutil  # pylint: disable=g-import-not-at-top

            def die(name):
                if name == point:
                    os._exit(9)

            saved_model_lib._fault_point = die
            if not exchange:
                saved_model_lib._exchange = lambda a, b: False
            staged = os.path.join(
                model_dir, temp_files.temp_prefix("v1-") + "stage", "saved_model"
            )
            shutil.copytree(new_model, staged)
            die("before_swap")
            saved_model_lib.install_version(staged, os.path.join(model_dir, "1"))
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    base = tmp_path_factory.mktemp("sm")
    tiny_saved_model(str(base / "old"), 1.0)
    tiny_saved_model(str(base / "new"), 2.0)
    return str(base / "old"), str(base / "new")


@pytest.mark.parametrize(
    "point,exchange,served_after_kill",
    [
        ("before_swap", True, 1.0),
        ("after_swap", True, 2.0),
        ("before_swap", False, 1.0),
        ("after_aside", False, None),  # the one window of the fallback path
        ("after_swap", False, 2.0),
    ],
)
def test_killed_overwrite_keeps_a_servable_version(
    models, tmp_path, point, exchange, served_after_kill
):
    old, new = models
    model_dir = str(tmp_path / "m")
    os.makedirs(model_dir)
    import shutil

    shutil.copytree(old, os.path.join(model_dir, "1"))
    assert kill_child_at(point, model_dir, new, exchange) == 9
    version = os.path.join(model_dir, "1")
    if served_after_kill is None:
        # Renamed aside, not yet replaced: the next export puts it back.
        assert not os.path.exists(version)
    else:
        assert served_value(version) == served_after_kill
    leftovers = [n for n in os.listdir(model_dir) if n.startswith(".tmp-")]
    assert leftovers  # the killed run's temporary folder(s)
    restored, removed = saved_model_lib.recover_interrupted(model_dir)
    assert sorted(os.listdir(model_dir)) == ["1"]
    assert served_value(version) == (served_after_kill or 1.0)
    assert len(restored) == (served_after_kill is None)
    assert len(removed) == len(leftovers) - len(restored)


def test_swap_without_kill_replaces_the_version(models, tmp_path):
    old, new = models
    model_dir = str(tmp_path / "m")
    import shutil

    shutil.copytree(old, os.path.join(model_dir, "1"))
    for exchange in (True, False):
        staged = os.path.join(model_dir, temp_files.temp_prefix("s"), "saved_model")
        shutil.copytree(new if exchange else old, staged)
        if not exchange:
            saved = saved_model_lib._exchange
            saved_model_lib._exchange = lambda a, b: False
        try:
            saved_model_lib.install_version(staged, os.path.join(model_dir, "1"))
        finally:
            if not exchange:
                saved_model_lib._exchange = saved
        shutil.rmtree(os.path.dirname(staged))
        assert served_value(os.path.join(model_dir, "1")) == (2.0 if exchange else 1.0)
        assert sorted(os.listdir(model_dir)) == ["1"]


def test_only_orphaned_temporary_names_are_removed(tmp_path):
    d = tmp_path / "wd"
    d.mkdir()
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)  # a process id that is gone now
    host = temp_files._host()
    dead = f".tmp-{pid}@{host}~abcmodel.weights.h5"
    mine = temp_files.temp_prefix() + "xyzmodel.weights.h5"  # a write in progress
    other_host = ".tmp-1@elsewhere~model.weights.h5"  # fresh: maybe in progress
    old_legacy = ".tmp-q1w2model.weights.h5"  # an old release's name, stale
    not_ours = ["model.weights.h5", "notes.tmp-x.weights.h5", ".tmp-keep.json"]
    for name in [dead, mine, other_host, old_legacy] + not_ours:
        (d / name).write_bytes(b"x")
    stale = time.time() - 2 * temp_files.STALE_SECONDS
    os.utime(d / old_legacy, (stale, stale))
    (d / f".tmp-{pid}@{host}~v3-dir").mkdir()
    removed = temp_files.remove_orphans(str(d))
    assert sorted(os.path.basename(p) for p in removed) == sorted(
        [dead, old_legacy, f".tmp-{pid}@{host}~v3-dir"]
    )
    assert sorted(os.listdir(d)) == sorted([mine, other_host] + not_ours)


@pytest.mark.parametrize("name", ["..", ".", "../x", "a/b", "a\\b", ".hidden", ""])
def test_model_name_that_leaves_the_output_folder_is_refused(tmp_path, name):
    with pytest.raises(ValueError, match="model_name"):
        saved_model_lib.export_saved_model(
            str(tmp_path / "no-workdir"), str(tmp_path / "out"), model_name=name
        )
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("url", ["gs://bucket/models", "s3://b/m", "fake+x://h/p"])
def test_remote_output_is_refused_clearly(tmp_path, url, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="remote outputs are not supported"):
        saved_model_lib.export_saved_model(str(tmp_path / "no-workdir"), url)
    from wsol_keras.export import tflite_lib

    with pytest.raises(ValueError, match="remote outputs are not supported"):
        tflite_lib.export_tflite(str(tmp_path / "no-workdir"), url)
    assert os.listdir(tmp_path) == []  # no local 'gs:' folder
