"""The app's views. Importing this package registers every view of `catalog.VIEWS` (the tab order) by name,
title and caption only: no view's module, and no pyqtgraph, is imported until the window builds the view."""
from __future__ import annotations

from .catalog import VIEWS
from .registry import ViewSpec, add_view, get_view, register_view, view_names, views  # noqa: F401

for _spec in VIEWS:
    add_view(_spec)
