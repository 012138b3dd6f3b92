"""The field's metrics and the papers' test protocols over a trained model:
streaming metrics, protocol options and functions, evaluation passes and
records, multi-label evaluation, the pointing game, report figures, scoring a
folder of maps (`wsol-score`), the DGL layer sweep, object-mask coverage of
maps (`mask_coverage`), and `wsol-eval`.

Imports lower stages only: data, layers, losses, models, localization.
"""
