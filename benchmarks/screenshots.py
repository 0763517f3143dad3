"""The README's screenshots of the Diffusion, Map, Interpolate, Directions and Compare tabs, and of Train → New
model…, made the way a user gets there (not a benchmark: it times nothing; the measured numbers on screen are this
machine's).

The foreign-model shots (diffusion-diffusers, map-diffusers, map-dcgan) open what benchmarks/foreign_models.py
trains on `shapes`: a diffusers DDPMPipeline folder and pytorch/examples' DCGAN, imported (see its docstring); they
look for them in runs/trials/foreign/ unless --foreign says where.

The real window offscreen; each shot sets the view's own widgets (a seed, a sampler, a class, a slider), clicks
Run or Branch, waits until the engine has drawn what the shot shows, and grabs the window. Each shot runs in a
fresh process, one after another. The training tab's two shots are benchmarks/training_screenshots.py.

    python benchmarks/screenshots.py [--out assets] [--only diffusion-run diffusion-dpm ...] [--device auto]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from latency import wait_for  # noqa: E402

SIZE = (1280, 820)
WEIGHTS = HERE.parent / "weights"
SHAPES = str(WEIGHTS / "shapes-vae.safetensors")
FOREIGN = HERE.parent / "runs" / "trials" / "foreign"      # benchmarks/foreign_models.py's outputs (--foreign)


class Shot:
    """One window on one view and model; `grab` writes it."""

    def __init__(self, view: str, model: str, device: str, size: tuple[int, int] = SIZE) -> None:
        from explorer.app import build_window, make_application

        self.app = make_application("light")
        self.window = build_window(device=device, view=view, model=model, remember=False)
        self.window.resize(*size)
        self.window.show()
        self.wait(lambda: self.window.startup_done and self.window.view_is_ready(), 900)
        self.view = self.window.view_widgets[view]

    def wait(self, condition, timeout_s: float = 1800.0) -> None:
        wait_for(self.app, condition, timeout_s=timeout_s)

    def idle(self, settle_s: float = 0.8) -> None:
        """The engine quiet, then a moment for the last results to be drawn."""
        self.wait(self.window.engine.is_idle)
        t0 = time.perf_counter()
        self.wait(lambda: time.perf_counter() - t0 > settle_s)

    def grab(self, path: Path, widget=None):
        self.app.processEvents()
        image = (widget or self.window).grab()
        image.save(str(path))
        print(f"wrote {path}")
        return image

    def close(self) -> None:
        self.window.engine.shutdown()
        self.window.close()


def _run(shot: Shot, seed: int, sampler: str, steps: int | None = None, eta: float | None = None,
         samples: int | None = None) -> None:
    """Set the reverse process's widgets as a user does, then click Run."""
    v = shot.view
    v.seed.setValue(seed)
    v.sampler.setCurrentIndex(v.sampler.findData(sampler))
    if steps is not None:
        v.steps.setValue(steps)
    if eta is not None:
        v.eta.setValue(eta)
    if samples is not None:
        v.samples.setValue(samples)
    v.run_button.click()


def _finished(shot: Shot) -> None:
    """The run done, its cost line measured, the player on its last frame."""
    v = shot.view
    costs: list[bool] = []
    v.costs_shown.connect(lambda: costs.append(True))
    shot.wait(lambda: v.run is not None and v.run.done and bool(costs))
    shot.wait(lambda: v.pos >= len(v.run.frames) - 1)
    shot.idle()


def diffusion_run(out: Path, device: str) -> None:
    """DDPM, all 1,000 steps for 16 samples from seed 3, caught at frame 423 while it runs."""
    shot = Shot("diffusion", "vae-2d", device)
    v = shot.view
    shot.idle()
    _run(shot, 3, "ddpm", samples=16)
    shot.wait(lambda: v.run is not None and v.shown == 0 and v.pos >= 422)
    shot.grab(out / "screenshot-diffusion-run.png")
    v.stop()
    shot.close()


def diffusion_branches(out: Path, device: str) -> None:
    """DDIM 50 (η = 1) for 4 samples from seed 7, branched from t = 795, 489 and 183, shown at t = 489."""
    shot = Shot("diffusion", "vae-2d", device)
    v = shot.view
    shot.idle()
    _run(shot, 7, "ddim", steps=50, eta=1.0, samples=4)
    _finished(shot)
    ts = [f.t for f in v.run.frames]
    for t in (795, 489, 183):
        j = v.branch(ts.index(t))
        shot.wait(lambda j=j: v.tracks[j].done)
    shot.idle()
    v.track_box.setCurrentIndex(0)
    v.show_frame(ts.index(489))
    shot.idle()
    shot.grab(out / "screenshot-diffusion-branches.png")
    shot.close()


def diffusion_forward(out: Path, device: str) -> None:
    """The forward process of test image 0 at t = 300, noise seed 0."""
    shot = Shot("diffusion", "ddpm", device)
    v = shot.view
    v.halves.setCurrentIndex(0)
    f = v.forward
    f.index.setValue(0)
    f.noise_seed.setValue(0)
    f.slider.setValue(300)
    shot.wait(lambda: f.peek is not None and f.peek.t == 300 and f.peek.index == 0)
    shot.idle()
    shot.grab(out / "screenshot-diffusion-forward.png")
    shot.close()


def diffusion_guidance(out: Path, device: str) -> None:
    """The guided DDPM asked for a sneaker at w = 3, 8 samples: the run, and the strip of one sample at every scale."""
    shot = Shot("diffusion", str(WEIGHTS / "ddpm-guided.safetensors"), device, (1600, 1000))   # room for the strip
    v = shot.view
    shot.idle()
    v.samples.setValue(8)
    v.picker.set_guidance(3.0)
    v.picker.set_class(7)                      # "7 · Sneaker": a new class starts a run
    _finished(shot)
    shot.wait(lambda: v.strip is not None and len(v.strip.scales) == v.strip.total)
    shot.idle()
    shot.grab(out / "screenshot-diffusion-guidance.png")
    shot.close()


def diffusion_dpm(out: Path, device: str) -> None:
    """DDIM in 50 steps (η = 0) above DPM-Solver++ in 20, the same seed: each window cut below its cost line."""
    from PIL import Image

    shot = Shot("diffusion", "ddpm", device)
    v = shot.view
    shot.idle()
    parts = []
    for sampler, steps in (("ddim", 50), ("dpm++", 20)):
        _run(shot, 0, sampler, steps=steps, eta=0.0, samples=16)
        _finished(shot)
        path = out / f"screenshot-diffusion-{sampler.strip('+')}-full.png"
        shot.grab(path)
        bottom = v.cost.mapTo(shot.window, v.cost.rect().bottomLeft()).y() + 6
        top = 0 if not parts else v.seed.mapTo(shot.window, v.seed.rect().topLeft()).y() - 6
        parts.append(Image.open(path).convert("RGB").crop((0, top, shot.window.width(), bottom)))
        path.unlink()
    picture = Image.new("RGB", (max(p.width for p in parts), sum(p.height for p in parts) + 4), (160, 160, 160))
    y = 0
    for p in parts:
        picture.paste(p, (0, y))
        y += p.height + 4
    picture.save(out / "screenshot-diffusion-dpm.png")
    print(f"wrote {out / 'screenshot-diffusion-dpm.png'}")
    shot.close()


def map_shapes(out: Path, device: str) -> None:
    """The colour VAE's map, dots coloured by where the shape sits (y); a big magenta circle pinned, 8 draws."""
    shot = Shot("map", SHAPES, device)
    v = shot.view
    side = v.side
    side.colour_by.setCurrentIndex(side.colour_by.findData("y"))
    v.pin(20)
    side.sample_button.click()
    shot.idle()
    side.verticalScrollBar().setValue(0)       # the sidebar from its top: the probes, the pinned image, the colours
    shot.idle(0.3)
    shot.grab(out / "screenshot-map-shapes-vae.png")
    shot.close()


def interpolate_shapes(out: Path, device: str) -> None:
    """A slerp walk through the colour VAE: the two first keyframes, then a big magenta circle (test image 20)."""
    shot = Shot("interpolate", SHAPES, device)
    v = shot.view
    v.add_test_image(20)
    shot.idle()
    v.set_t(0.8)
    shot.idle()
    shot.grab(out / "screenshot-interpolate-shapes-vae.png")
    shot.close()


def compare_shapes(out: Path, device: str) -> None:
    """The Compare tab on the shapes test set: the Fashion-MNIST models' columns unticked in Columns, as they do
    not draw these pictures, then New images."""
    shot = Shot("compare", SHAPES, device)
    v = shot.view
    shot.idle()
    for path in list(v.columns):
        if not v.fits(path):
            v.set_column_shown(path, False)
    v.new_images_button.click()
    shot.idle()
    shot.window.banner.hide()                  # dismissed, as a user would
    shot.idle(0.3)
    shot.grab(out / "screenshot-compare-shapes.png")
    shot.close()


def directions_conv_vae(out: Path, device: str) -> None:
    """The conv VAE's Directions tab: a trouser (test image 15) moved along Trouser → Dress just past where its
    label flips, PC 2 at +0.5σ beside it; the strip along the class direction."""
    shot = Shot("directions", "conv-vae-16", device)
    v = shot.view
    shot.idle()
    v.make_attribute(1, 3)
    shot.wait(lambda: len(v.directions) > 8)
    v.pick_test_image(15)
    shot.idle()
    slot = next(s for s in v.slots if s.direction_index == len(v.directions) - 1)
    slot.set_value(1.75)
    v.slots[1].set_value(0.5)
    v.strip_box.setCurrentIndex(v.slots.index(slot))
    shot.idle()
    shot.grab(out / "screenshot-directions-conv-vae-16.png")
    shot.close()


def directions_gan(out: Path, device: str) -> None:
    """The GAN's Directions tab: sample 3 moved along GANSpace 1 and 2, the strip along GANSpace 1."""
    shot = Shot("directions", "gan", device)
    v = shot.view
    shot.idle()
    v.seed_spin.setValue(3)
    shot.idle()
    v.slots[0].set_value(1.5)
    v.slots[1].set_value(-1.0)
    shot.idle()
    shot.grab(out / "screenshot-directions-gan.png")
    shot.close()


def _foreign(name: str) -> str:
    path = FOREIGN / name
    if not path.exists():
        sys.exit(f"{path} is missing: make it with benchmarks/foreign_models.py (see its docstring)")
    return str(path)


def diffusion_diffusers(out: Path, device: str) -> None:
    """The diffusers folder trained on shapes: DDIM in 50 steps (η = 0) for 16 samples from seed 0, finished."""
    shot = Shot("diffusion", _foreign("ddpm-shapes"), device)
    _run(shot, 0, "ddim", steps=50, eta=0.0, samples=16)
    _finished(shot)
    shot.grab(out / "screenshot-diffusion-diffusers.png")
    shot.close()


def map_diffusers(out: Path, device: str) -> None:
    """The map's noise plane on the diffusers folder, its decoded grid on: every point an x_T, denoised by 20 DDIM
    steps; the probes' pictures beside."""
    shot = Shot("map", _foreign("ddpm-shapes"), device)
    shot.idle()
    shot.view.set_layer("grid", True)
    shot.idle()
    shot.view.side.verticalScrollBar().setValue(0)
    shot.idle(0.3)
    shot.grab(out / "screenshot-map-diffusers.png")
    shot.close()


def map_dcgan(out: Path, device: str) -> None:
    """The map on pytorch/examples' DCGAN (imported with its discriminator): its noise plane coloured by the
    detective's verdict D(G(z)), the probes' pictures with theirs."""
    shot = Shot("map", _foreign("dcgan.safetensors"), device)
    v = shot.view
    shot.idle()
    v.set_layer("critic", True)
    shot.idle()
    v.side.verticalScrollBar().setValue(0)
    shot.idle(0.3)
    shot.grab(out / "screenshot-map-dcgan.png")
    shot.close()


def train_dialog(out: Path, device: str) -> None:
    """Train → New model… for a GAN, its estimate measured."""
    shot = Shot("train", "ae-2d", device, (1280, 860))
    dialog = shot.view.new_model()
    dialog.select_family("gan")
    shot.wait(lambda: dialog.estimate.text().startswith("about"), 600)
    shot.idle()
    shot.grab(out / "screenshot-train-dialog.png", dialog)
    dialog.reject()
    shot.close()


SHOTS = {"diffusion-run": diffusion_run, "diffusion-branches": diffusion_branches,
         "diffusion-forward": diffusion_forward, "diffusion-guidance": diffusion_guidance,
         "diffusion-dpm": diffusion_dpm, "map-shapes": map_shapes, "interpolate-shapes": interpolate_shapes,
         "compare-shapes": compare_shapes, "directions-conv-vae": directions_conv_vae,
         "directions-gan": directions_gan, "train-dialog": train_dialog,
         "diffusion-diffusers": diffusion_diffusers, "map-diffusers": map_diffusers, "map-dcgan": map_dcgan}


def main() -> None:
    global FOREIGN
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(HERE.parent / "assets"))
    parser.add_argument("--only", nargs="+", choices=sorted(SHOTS), help="these shots (default: all)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--foreign", default=str(FOREIGN), help="benchmarks/foreign_models.py's outputs")
    args = parser.parse_args()
    FOREIGN = Path(args.foreign)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = args.only or list(SHOTS)
    if len(names) == 1:
        SHOTS[names[0]](out, args.device)
        return
    failed = []
    for name in names:                         # each in a fresh process: one app, one engine, one window
        code = subprocess.call([sys.executable, __file__, "--out", str(out), "--device", args.device,
                                "--foreign", str(FOREIGN), "--only", name])
        if code:
            failed.append(name)
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
