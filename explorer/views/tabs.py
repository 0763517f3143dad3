"""The tabs: every view by name, tab title and caption, with where its class lives.

Known without importing any view (nor pyqtgraph, nor torch): the first frame paints every tab and caption, and
a view's module loads only when the window builds it. `TABS` below is the tab order; each names its view by
"package.module:Class". A view written elsewhere (a test, a plug-in) can register its class directly:

    @register_view("slow", title="Slow", caption="A view that takes its time.")
    class SlowView(View):
        ...

What a view offers the window (`ready`, `caption_changed`, `fill_menu`, `confirm_close`) is declared by the View
base class in `base.py`.
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


# -- the app's own views, in tab order ---------------------------------------------------------------------------------
MAP = ViewSpec(
    "map", "Latent map",
    "The summary space: each dot is a test image, placed at the code the encoder summarised it to. "
    "Drag a probe and the decoder rebuilds whatever lives there, between the dots too.",
    "explorer.views.map.view:LatentMapView")
INTERPOLATE = ViewSpec(
    "interpolate", "Interpolate",
    "A walk through the summary space: drag the slider and one image turns into the other. A VAE's space "
    "is smooth, so every step is a plausible picture; a plain autoencoder's has holes the walk falls into.",
    "explorer.views.interpolate.view:InterpolationView")
DIRECTIONS = ViewSpec(
    "directions", "Directions",
    "Move a picture along a meaning: the main ways the codes vary, from one class towards another, or from "
    "one group of pictures you pick to another. Each slider goes from −3σ to +3σ, σ the spread of the codes "
    "along its direction, and the line under it shows where the classifier's label flips.",
    "explorer.views.directions.view:DirectionsView")
COMPARE = ViewSpec(
    "compare", "Compare",
    "One screen, every family: the autoencoders summarise and rebuild the same images, the generators "
    "draw from one seed, and the numbers say who blurs, who draws sharp and who takes longest.",
    "explorer.views.compare.view:CompareView")
DIFFUSION = ViewSpec(
    "diffusion", "Diffusion",
    "The sculptor and the block of marble: noise is added until nothing of the image is left, then a U-Net "
    "takes it away one small step at a time; watch its guess of the finished image at every step.",
    "explorer.views.diffusion.view:DiffusionView")
TRAIN = ViewSpec(
    "train", "Training",
    "Watch a model learn: its losses fall, its samples sharpen, and for a GAN you can play the forger's "
    "and the detective's moves one at a time.",
    "explorer.views.train.view:TrainingView", menu="&Train")

TABS = (MAP, INTERPOLATE, DIRECTIONS, COMPARE, DIFFUSION, TRAIN)
for _spec in TABS:
    add_view(_spec)
