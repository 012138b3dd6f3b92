"""Training a model in a workdir: the fit loop (`wsol-train`), the papers'
optimizer, precise BatchNorm statistics, precision, tf.distribute strategies,
the workdir and its atomic checkpoints, checkpoint selection by val
localization, and config range checks.  Names no method: a method's extra
phases come from `wsol_keras.models.phases`.

Imports lower stages only: data ... evaluation.
"""
