"""The README's training screenshots, made the way a user gets there (not a benchmark: it times nothing).

The real window offscreen on the training tab; a run started as Train → New model… starts it (the dialog's
defaults for the family), watched until there is something to see, then the window is grabbed:
- assets/screenshot-train.png: a VAE (2-d latent) after a few epochs, its curves and the re-encoded map;
- assets/screenshot-train-slow-motion.png: a GAN paused after a few hundred steps, then one detective step,
  one forger step and one more detective step, the slow-motion marks and histograms on screen.
Both runs are trained into a temporary folder and deleted after.

    python benchmarks/training_screenshots.py [--vae-epochs 3] [--gan-steps 300] [--out assets]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from latency import wait_for  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vae-epochs", type=int, default=3)
    parser.add_argument("--gan-steps", type=int, default=300)
    parser.add_argument("--out", default=str(HERE.parent / "assets"))
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    from explorer.app import build_window, make_application
    from explorer.views.train.dialog import PLANS, TrainRequest
    from explorer.views.train.view import KEY

    app = make_application("light")
    window = build_window(device=args.device, view="train", remember=False)
    window.resize(1280, 860)
    window.show()
    wait_for(app, lambda: window.startup_done, timeout_s=300)
    view = window.view_widgets["train"]
    tmp = Path(tempfile.mkdtemp(prefix="training-shots-"))
    out = Path(args.out)

    def request(family: str, epochs: float) -> TrainRequest:
        plan = PLANS[family]
        return TrainRequest(family, plan.config(plan.latent), "fashion-mnist", plan.subset, epochs, plan.batch,
                            plan.lr, 0, "", str(tmp / f"my-{family}.safetensors"))

    def settle() -> None:
        t0 = time.perf_counter()
        wait_for(app, lambda: time.perf_counter() - t0 > 0.6)

    def stop() -> None:
        view.control.set_outcome("discard")
        view.channel.cancel(KEY)
        wait_for(app, lambda: not view.channel.pending(KEY), timeout_s=120)
        wait_for(app, lambda: not view.running or True)

    # a VAE in progress: a few epochs in, the map re-encoded after each
    view.start(request("vae", args.vae_epochs + 2))
    wait_for(app, lambda: view.last is not None and view.last.step >= args.vae_epochs * view.last.steps_per_epoch
             + view.last.steps_per_epoch // 3, timeout_s=1800)
    settle()
    window.grab().save(str(out / "screenshot-train.png"))
    stop()

    # a GAN in slow motion
    view.start(request("gan", 50))
    wait_for(app, lambda: view.last is not None and view.last.step >= args.gan_steps, timeout_s=3600)
    view.pause()
    for button in (view.detective_button, view.forger_button, view.detective_button):
        done: list[str] = []
        view.single_done.connect(done.append)
        button.click()
        wait_for(app, lambda: bool(done), timeout_s=120)
        view.single_done.disconnect(done.append)
    settle()
    window.grab().save(str(out / "screenshot-train-slow-motion.png"))
    stop()
    window.engine.shutdown()
    print(f"wrote {out / 'screenshot-train.png'} and {out / 'screenshot-train-slow-motion.png'}")


if __name__ == "__main__":
    main()
