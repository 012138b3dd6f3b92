"""Directories built once per test run and shared by every test (and every
pytest-xdist worker) that only needs a copy of them: a trained smoke workdir
that several test files would otherwise each train.

The first caller builds the directory under the run's base temporary folder
(the parent of each worker's folder under ``-n``) while holding an ``fcntl``
lock; the others wait on the lock and find it done. Each caller gets its own
copy, so a test that writes into its workdir (an evaluation record, a resumed
run) cannot change what another test reads.
"""

import fcntl
import os
import shutil


def _run_root(tmp_path_factory):
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # shared by the run's workers (popen-gw0, popen-gw1, ...)
    root = base / "shared_dirs"
    root.mkdir(exist_ok=True)
    return root


def shared_dir(tmp_path_factory, key, build):
    """The directory `build(path)` makes, built once per run; returns its path.

    Args:
      tmp_path_factory: pytest's fixture of that name.
      key: names the directory; one key, one recipe.
      build: called with a path that does not exist yet; writes the directory.
    """
    root = _run_root(tmp_path_factory)
    done = root / key
    with open(root / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not done.exists():
                partial = root / f"{key}.partial"
                shutil.rmtree(partial, ignore_errors=True)
                build(str(partial))
                os.rename(partial, done)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return str(done)


def copy_of_shared_dir(tmp_path_factory, key, build, dest):
    """A private copy at `dest` of `shared_dir(tmp_path_factory, key, build)`."""
    shutil.copytree(shared_dir(tmp_path_factory, key, build), dest)
    return str(dest)


def build_smoke_cam_workdir(path):
    """What ``wsol-train --config=configs/synthetic_cam.py:smoke`` leaves:
    the trained run (history, checkpoints, final weights) and its test report
    (``trainer.main``: ``train(..., evaluate=True)``, then
    ``evaluate_and_report``)."""
    from wsol_keras.configs import synthetic_cam
    from wsol_keras.evaluation import evaluator
    from wsol_keras.training import trainer

    config = synthetic_cam.get_config("smoke")
    model, source, _ = trainer.train(config, path, evaluate=True)
    evaluator.evaluate_and_report(model, source, config, path)


def smoke_cam_workdir(tmp_path_factory, dest):
    """A private copy at `dest` of the run's one smoke-trained CAM workdir."""
    return copy_of_shared_dir(
        tmp_path_factory, "smoke_cam_workdir", build_smoke_cam_workdir, dest
    )
