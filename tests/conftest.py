"""Suite-wide fixtures and the parallel schedule.

Under ``pytest -n auto`` (xdist's default ``--dist load``) a module-scoped
fixture is built once per worker that runs any test of its module, and those
fixtures are the suite's costliest steps (trained workdirs, exports, a JAX
subprocess). `pytest_xdist_make_scheduler` below keeps every module that
defines a module-scoped fixture on one worker (xdist's ``loadscope`` for those
modules; each other test is scheduled on its own, as with ``load``), largest
units first. A serial run (no ``-n``, or ``-p no:xdist``) is unchanged, and
an explicit ``--dist`` is honoured.
"""

import functools
import os
import re

import keras
import pytest

_MODULE_FIXTURE = re.compile(r"""@pytest\.fixture\([^)]*scope=["']module["']""")


@functools.lru_cache(maxsize=None)
def _has_module_fixture(path):
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return False
    return _MODULE_FIXTURE.search(text) is not None


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    root = str(config.rootpath)

    class ModuleFixtureScheduling(LoadScopeScheduling):
        """``load``, except that a module with a module-scoped fixture is one
        work unit (its tests run on one worker, after one fixture build)."""

        def _split_scope(self, nodeid):
            path = nodeid.split("::", 1)[0]
            if _has_module_fixture(os.path.join(root, path)):
                return path
            return nodeid

    return ModuleFixtureScheduling(config, log)


@pytest.fixture(autouse=True)
def _global_dtype_policy_is_float32():
    """Each test starts from Keras' float32 policy: a test that sets a mixed
    policy (precision tests) must not change the numbers of the tests that a
    parallel worker runs after it."""
    keras.config.set_dtype_policy("float32")
    yield
    keras.config.set_dtype_policy("float32")
