"""Experiment configs: `base.py` plus one experiment per file, each with `get_config(arg)`.

A subpackage of wsol_keras (big_vision style), so installed and checkout runs
find the same files: `wsol-train --config=configs/<name>.py` reads them through
the repository's `configs` link, and `wsol_keras.configs.<name>` imports them.
"""
