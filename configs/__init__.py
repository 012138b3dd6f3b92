"""Experiment configs: one experiment per file, each with `get_config(arg)`.

Installed as `wsol_keras.configs` so `wsol-train` finds its default config
outside a checkout of the repository.
"""
