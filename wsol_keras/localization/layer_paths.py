"""Layer paths of nested Keras models, for choosing a DGL / Grad-CAM layer.

`wsol_keras.localization.dual_gradient.resolve_layer` takes ``/``-separated paths through
nested models (``backbone/small_cnn_features/stage3_relu1``); this lists them,
marking the layers whose outputs are spatial feature maps, the kind DGL's
maps are computed on (Tan et al., "Dual-Gradients Localization Framework for
Weakly Supervised Object Localization", ACM MM 2020, Sec. 3.3 and the layer
study of Table 1). `wsol-eval --list_layers` prints it.
"""

__all__ = ["LayerPath", "format_layer_paths", "layer_paths"]


class LayerPath:
    """One entry of `layer_paths`: path, layer class, output shape, DGL use."""

    def __init__(self, path, kind, shape, dgl):
        self.path, self.kind, self.shape, self.dgl = path, kind, shape, dgl

    def __repr__(self):
        return f"LayerPath({self.path!r}, {self.kind}, {self.shape}, dgl={self.dgl})"


# Layers whose [B, H, W, K] output is a feature map DGL's Eq. 5-8 apply to
# (DGL Table 1 sweeps conv / ReLU / pooling outputs); batch norms, inputs and
# preprocessing are listed but not marked.
_DGL_KINDS = (
    "Conv",
    "ReLU",
    "Activation",
    "Pooling",
    "Concatenate",
    "Add",
)


def _output_shape(layer):
    try:
        return tuple(layer.output.shape)
    except (AttributeError, ValueError):  # subclassed layers: no symbolic output
        return None


def layer_paths(model):
    """Every nested layer's `resolve_layer` path, depth first, in model order.

    Returns:
        list of `LayerPath` (``.path``, ``.kind`` class name, ``.shape`` output
        shape or None, ``.dgl`` True where DGL / Grad-CAM maps make sense: a
        conv, activation, pooling or merge layer with a spatial [B, H, W, K]
        output).
    """
    found = []

    def walk(layer, prefix):
        for sub in getattr(layer, "layers", None) or []:
            path = prefix + sub.name
            shape = _output_shape(sub)
            kind = type(sub).__name__
            dgl = (
                shape is not None
                and len(shape) == 4
                and not getattr(sub, "layers", None)
                and any(k in kind for k in _DGL_KINDS)
            )
            found.append(LayerPath(path, kind, shape, dgl))
            walk(sub, path + "/")

    walk(model, "")
    return found


def format_layer_paths(model):
    """`layer_paths` as text, one per line; ``*`` marks the DGL-usable ones."""
    entries = layer_paths(model)
    width = max([len(e.path) for e in entries] + [4])
    lines = ["  " + "path".ljust(width) + "  layer / output shape"]
    for e in entries:
        shape = "" if e.shape is None else str(tuple(e.shape)).replace("None", "B")
        lines.append(
            ("* " if e.dgl else "  ") + e.path.ljust(width) + f"  {e.kind} {shape}"
        )
    lines.append(
        "* = spatial feature map: usable as --dgl_layer / --sweep_layers "
        "(DGL, PCS, Grad-CAM)"
    )
    return "\n".join(lines)
