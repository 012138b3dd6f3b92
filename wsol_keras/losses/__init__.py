"""Losses of the WSOL methods."""
