"""Checks that the data suits the chosen method, run where the model is built."""

from __future__ import annotations

from absl import logging

from wsol_keras.data.hierarchy import is_name_fallback
from wsol_keras.data.multilabel import check_single_label_method

# Methods whose loss reads the class hierarchy (DANet's HDA, Eq. 3).
HIERARCHY_METHODS = ("danet",)


def check_data_for_method(config, data_info) -> None:
    """Raises on multi-label data for a single-label method; warns when a
    hierarchy-trained method gets the automatic name-based hierarchy."""
    name = str(config.method.name)
    check_single_label_method(
        name, bool(config.method.get("multi_label", False)), data_info
    )
    names = data_info.get("class_names")
    ancestors = data_info.get("ancestors")
    if name in HIERARCHY_METHODS and names and ancestors is not None:
        if is_name_fallback(ancestors, names):
            logging.warning(
                "%s: NO CLASS HIERARCHY FILE: the hierarchy was built from class "
                "names (last word of the name, then alphabetical chunks), a "
                "stand-in whose upper level carries no taxonomy, so the "
                "hierarchical loss (DANet Eq. 3) trains on near-arbitrary parents "
                "and results will not match the paper. Set "
                "--config.data.hierarchy_file (DANet's released "
                "family_label.txt,order_label.txt for CUB; a '<child> <parent>' "
                "WordNet list for ILSVRC; see wsol_keras.data.hierarchy_lists).",
                name.upper(),
            )
