"""The compare view: importing the package registers it (the view lives in view.py)."""
from . import view  # noqa: F401
