"""Test set-up: lets tests import the experiment files as `configs.<name>`.

The repository root is *appended* to sys.path: the installed `wsol_keras`
(what CI tests, after `pip install '.[test]'`) still comes first, while the
top-level `configs/` folder, installed only as `wsol_keras.configs`, becomes
importable under its checkout name.
"""

import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.append(REPO)
