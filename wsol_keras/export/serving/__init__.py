"""TF Serving model config and a request-building client for wsol-export SavedModels."""
