"""The app's views, a folder per tab (map, interpolate, compare, diffusion, train) and `widgets/` for what two or
more share. Importing this package registers every tab of `tabs.TABS` by name, title and caption only: no view's
module, and no pyqtgraph, is imported until the window builds the view."""
from __future__ import annotations

from .tabs import TABS, ViewSpec, add_view, get_view, register_view, view_names, views

__all__ = ["TABS", "ViewSpec", "add_view", "get_view", "register_view", "view_names", "views"]
