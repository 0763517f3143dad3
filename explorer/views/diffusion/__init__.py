"""The diffusion tab: the forward process at any t, the reverse process frame by frame, branches, the cost."""
from .view import DiffusionView

__all__ = ["DiffusionView"]
