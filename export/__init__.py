"""Thin export programs (SavedModel for TF Serving, TFLite); logic in wsol_keras.serving."""
