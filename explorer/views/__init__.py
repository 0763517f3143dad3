"""The app's views. Importing this package registers every view, in the order of VIEW_MODULES (the tab order).

A view module that is not written yet is simply skipped; an error inside one that exists is raised, never hidden.
"""
from __future__ import annotations

from importlib import import_module
from importlib.util import find_spec

from .registry import ViewSpec, get_view, register_view, view_names, views  # noqa: F401

VIEW_MODULES = ("latent_map", "interpolation", "compare", "diffusion", "training")

for _name in VIEW_MODULES:
    if find_spec(f"{__name__}.{_name}") is not None:
        import_module(f"{__name__}.{_name}")
