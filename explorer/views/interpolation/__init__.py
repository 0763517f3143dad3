"""The Interpolate tab: a slider between keyframes (view.py registers it), the picture-file conversion and the
plots beside it."""
from . import view  # noqa: F401  (registers the view)
