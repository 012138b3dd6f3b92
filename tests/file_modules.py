"""Loads a Python file as a module: test fixtures of other test files, config
files and the checkout's scripts (tools/, bench/).

CI runs pytest against the installed package without the checkout on
sys.path, so files outside the package are loaded by their path.
"""

import importlib.util


def load_module(name, path):
    """The module `name` executed from the file `path`."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
