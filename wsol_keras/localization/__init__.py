"""Model outputs -> heat maps and boxes: map primitives, the one map step,
DualGradient and gradient maps, layer paths, and `boxes/` (map -> boxes).

Imports lower stages only: data, layers, losses, models.  Two of its modules
sit below those stages and import nothing of the package: `primitives`
(class-map selection, normalization and upsampling in `keras.ops`) and
`boxes/` (score map -> boxes); the methods' layers, losses and models use
them (ACoL's erasing, SLT-Net's pseudo box), so every map is computed one way.
"""
