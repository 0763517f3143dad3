"""The app's views by name, tab title and caption, with where each one's class lives.

Known without importing any view (nor pyqtgraph, nor torch): the first frame paints every tab and caption, and
a view's module loads only when the window builds it. The order here is the tab order."""
from __future__ import annotations

from .registry import ViewSpec

MAP = ViewSpec(
    "map", "Latent map",
    "The summary space: each dot is a test image, placed at the code the encoder summarised it to. "
    "Drag a probe and the decoder rebuilds whatever lives there, between the dots too.",
    "explorer.views.latent_map:LatentMapView")
INTERPOLATE = ViewSpec(
    "interpolate", "Interpolate",
    "A walk through the summary space: drag the slider and one image turns into the other. A VAE's space "
    "is smooth, so every step is a plausible garment; a plain autoencoder's has holes the walk falls into.",
    "explorer.views.interpolation.view:InterpolationView")
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
    "explorer.views.training.view:TrainingView", menu="&Train")

VIEWS = (MAP, INTERPOLATE, COMPARE, DIFFUSION, TRAIN)
