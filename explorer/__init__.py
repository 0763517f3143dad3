"""Latent Explorer's Qt app. Only `explorer.engine` imports torch; everything else sees numpy arrays."""
