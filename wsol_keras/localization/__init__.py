"""Model outputs -> heat maps and boxes: map primitives, the one map step,
DualGradient and gradient maps, layer paths, and `boxes/` (map -> boxes).

Imports lower stages only: data, layers, losses, models.
"""
