"""`wsol-predict`: classes, boxes and heat maps for a folder of a user's own
images; what it runs (a workdir or any Keras classifier) and how it reads
image files.

Imports lower stages: data ... training (to reload a workdir).
"""
