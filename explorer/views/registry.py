"""The views the window shows as tabs, in registration order, each with a one-line caption.

The app's own views are named in `catalog.py` by "module:Class", so the window paints every tab and caption
before any view's module (and pyqtgraph with it) is imported. A view written elsewhere (a test, a plug-in) can
register its class directly:

    @register_view("map", title="Latent map", caption="Every dot is a test image, placed where the encoder puts it.")
    class LatentMapView(QWidget):
        def __init__(self, state: AppState, parent=None): ...

A view may also define, and the window uses them when present:
    ready = Signal()              emitted once it has drawn what the current model asks for (--screenshot waits)
    caption_changed = Signal(str) a caption that depends on the model (e.g. "no encoder: no data to scatter")
    fill_menu(menu)               fills the menu its spec names (`menu`); the window makes the menu at once and
                                  builds the view when the menu is first opened
    confirm_close() -> bool       asked when the window closes; False keeps it open (unsaved work, a run)
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import Callable, TypeVar

T = TypeVar("T", bound=type)


@dataclass(frozen=True)
class ViewSpec:
    name: str          # what --view takes
    title: str         # the tab's text
    caption: str       # one line above the view: what the user is looking at
    target: type | str  # the view's class, or where it lives: "package.module:Class", imported when first built
    menu: str = ""     # the title of the view's own menu in the menu bar (left of Help), if it has one

    @property
    def cls(self) -> type:
        """The view's class; importing its module the first time it is asked for."""
        if isinstance(self.target, type):
            return self.target
        module, _, name = self.target.partition(":")
        return getattr(import_module(module), name)

    @property
    def qualname(self) -> str:
        return self.target.__qualname__ if isinstance(self.target, type) else self.target.partition(":")[2]


_VIEWS: dict[str, ViewSpec] = {}


def add_view(spec: ViewSpec) -> ViewSpec:
    """Register a view; the name must be new (two views fighting over one tab is a bug)."""
    existing = _VIEWS.get(spec.name)
    if existing is not None and existing.qualname != spec.qualname:
        raise ValueError(f"a view named '{spec.name}' is already registered ({existing.qualname})")
    _VIEWS[spec.name] = spec
    return spec


def register_view(name: str, *, title: str, caption: str) -> Callable[[T], T]:
    """Class decorator that adds a view whose class is already imported."""

    def wrap(cls: T) -> T:
        add_view(ViewSpec(name, title, caption, cls))
        return cls

    return wrap


def views() -> list[ViewSpec]:
    """Every registered view, in registration order."""
    return list(_VIEWS.values())


def view_names() -> list[str]:
    return list(_VIEWS)


def get_view(name: str) -> ViewSpec:
    """The view called `name`, or a KeyError whose message lists the names there are."""
    try:
        return _VIEWS[name]
    except KeyError:
        known = ", ".join(_VIEWS) or "none yet"
        raise KeyError(f"there is no view '{name}'; views: {known}") from None
