"""`latent-explorer`: the command line, the QApplication, and headless screenshots.

    latent-explorer                                   the window, on the shipped weights and Fashion-MNIST
    latent-explorer --weights DIR --device cuda       other weights, another device
    latent-explorer --screenshot out.png --view map   no window: load, render to PNG, exit (servers, README, tests)
    latent-explorer SESSION.json                      a saved session: its model, view, probes and keyframes

Without a display (no DISPLAY/WAYLAND_DISPLAY on Linux) it says so in one line and points to --screenshot,
instead of letting Qt abort with a traceback.
"""
from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from pathlib import Path

from models.catalog import DATASET_NAMES, DEFAULT_DATASET, dataset_name

SETTLE_FALLBACK_MS = 20_000      # the collector comes back by then even if some view never finishes building
_collector = {"held": False, "frozen": False}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="latent-explorer",
        description="See and touch the latent spaces of autoencoders, VAEs, GANs, VAE-GANs and diffusion models.")
    p.add_argument("session", nargs="?", metavar="SESSION.json",
                   help="a session saved with File > Save session: its model, view, probes, keyframes and seeds")
    p.add_argument("--weights", metavar="DIR",
                   help="folder of shipped .safetensors models (default: $LATENT_EXPLORER_WEIGHTS, else the "
                        "checkout's weights/, else the installed copy)")
    p.add_argument("--device", default="auto", metavar="auto|cpu|cuda|mps",
                   help="where the models run (default: auto = CUDA, then MPS, then CPU)")
    p.add_argument("--data", default=DEFAULT_DATASET, metavar="NAME",
                   help=f"the data set the views show where no model names its own: {', '.join(DATASET_NAMES)}, "
                        "or folder:PATH for your own pictures (a model shows the data set it was trained on)")
    p.add_argument("--view", metavar="NAME", help="the view to open (e.g. map)")
    p.add_argument("--model", metavar="NAME|PATH",
                   help="the model to open: a shipped model's name (e.g. vae-2d) or a .safetensors file")
    p.add_argument("--screenshot", metavar="PATH",
                   help="render the window offscreen to a PNG once the view has drawn, then exit")
    p.add_argument("--size", default="1280x820", metavar="WxH", help="window size for --screenshot")
    p.add_argument("--timeout", type=float, default=120.0, metavar="S",
                   help="--screenshot gives up waiting for the view after this many seconds")
    p.add_argument("--theme", default="auto", choices=("auto", "light", "dark"),
                   help="colours: follow the system (default), or force light or dark")
    args = p.parse_args(argv)
    try:
        args.data = dataset_name(args.data)
    except ValueError as err:
        p.error(str(err))
    try:
        w, h = (int(v) for v in args.size.lower().split("x"))
        if w < 200 or h < 150:
            raise ValueError
        args.size = (w, h)
    except ValueError:
        p.error(f"--size must look like 1280x820, got {args.size!r}")
    return args


def display_problem() -> str | None:
    """On Linux, the one line to print when Qt has no display to open a window on; None when it has one."""
    if not sys.platform.startswith("linux"):
        return None
    if os.environ.get("QT_QPA_PLATFORM") or os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return None
    return ("latent-explorer: no display to open a window on (DISPLAY and WAYLAND_DISPLAY are not set); "
            "to render the app to an image instead, run: latent-explorer --screenshot out.png --view map")


def make_application(theme: str = "auto"):
    """The QApplication with the app's names, icon and look (reuses one that already exists, as in tests)."""
    from PySide6.QtWidgets import QApplication

    from . import style

    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "latent-explorer"])
    app.setApplicationName("Latent Explorer")
    app.setOrganizationName("latent-explorer")
    app.setDesktopFileName("latent-explorer")
    app.setWindowIcon(style.app_icon())
    style.apply_theme(app, theme)
    style.follow_system(app, theme)
    return app


def build_window(weights: str | None = None, device: str = "auto", data: str = "fashion-mnist",
                 view: str | None = None, model: str | None = None, remember: bool = True,
                 session: str | None = None):
    """Engine, state and main window, wired together (a QApplication must exist). Used by main() and the tests."""
    from .engine.worker import Engine
    from .error_hook import install_error_hook
    from .state import AppState
    from .window import MainWindow

    engine = Engine(device, weights=weights, start=False)     # the window starts it once it has painted
    state = AppState(engine, weights, dataset=data)
    window = MainWindow(state, initial_view=view, initial_model=model, initial_session=session, remember=remember)
    state.setParent(window)
    engine.setParent(window)
    install_error_hook(window.show_unexpected)
    return window


def hold_collector(window) -> None:
    """No cyclic garbage collection while the app starts; then the objects startup made are frozen, once.

    For the app's own process (main, and benchmarks that start as main does): a test session, which builds
    and destroys many windows, keeps its collector as it is.

    torch's import and the views leave a few hundred thousand objects, and every full collection walked them all:
    pauses of 55-140 ms on the way to the first picture (one inside drawing the map's dots), and later in the
    middle of a drag. They live as long as the app, so once the views are built `gc.freeze` takes them out of
    the collector's sight and it goes back to work on what is new. (No collection before the freeze: it would
    be the very pause this avoids, and startup makes next to no cyclic garbage.)"""
    from PySide6.QtCore import QTimer

    if _collector["frozen"]:
        return
    if not _collector["held"]:
        _collector["held"] = gc.isenabled()
        gc.disable()

    def settle() -> None:
        if _collector["frozen"]:
            return
        _collector["frozen"] = True
        gc.freeze()
        if _collector["held"]:
            gc.enable()

    window.views_built.connect(settle)
    QTimer.singleShot(SETTLE_FALLBACK_MS, window, settle)


def take_screenshot(app, window, path: str | Path, size: tuple[int, int] = (1280, 820),
                    timeout_s: float = 120.0) -> int:
    """Show `window` (offscreen), wait until the model is loaded, the engine idle and the view ready, then save a
    PNG of the window. Returns the exit code: 0 when it wrote a finished picture, 1 when the picture shows an
    error, an unfinished view or no model (it is written anyway, so the reason can be seen)."""
    from PySide6.QtCore import QTimer

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    window.resize(*size)
    window.show()
    errors: list[str] = []
    window.engine.failed.connect(lambda _id, _key, message: errors.append(message))
    deadline = time.monotonic() + timeout_s
    quiet = [0]
    code = [1]

    def finish(timed_out: bool) -> None:
        timer.stop()
        app.processEvents()
        ok = window.grab().save(str(path), "PNG")
        model = window.state.model.name if window.state.model else "no model"
        if not ok:
            print(f"latent-explorer: could not write {path}", file=sys.stderr)
        else:
            print(f"wrote {path} ({size[0]}x{size[1]}, view {window.current_view() or 'none'}, {model})")
        for message in errors or ([window.last_error] if window.last_error else []):
            print(f"latent-explorer: {message}", file=sys.stderr)
        if timed_out:
            print(f"latent-explorer: the view was not ready after {timeout_s:g} s; the picture shows it unfinished",
                  file=sys.stderr)
        code[0] = 0 if ok and not timed_out and window.state.model is not None and not errors else 1
        app.exit(code[0])

    def poll() -> None:
        # A view that hit an error will not say `ready`: once the engine is quiet, the picture shows the error.
        # Without a model (none found, or it failed to load) there is nothing for the view to draw.
        settled = window.startup_done and not window.session_pending and window.engine.is_idle() and (
            window.view_is_ready() or bool(errors) or window.state.model is None)
        quiet[0] = quiet[0] + 1 if settled else 0
        if quiet[0] >= 4:                      # four quiet polls in a row: nothing was about to start
            finish(False)
        elif time.monotonic() > deadline:
            finish(True)

    timer = QTimer()
    timer.setInterval(100)
    timer.timeout.connect(poll)
    timer.start()
    # Closing the window inside the loop would make Qt post a Quit for the last window closed, which a later
    # event loop (a test's, an embedding app's) would then obey; so the loop ends first, then the window closes.
    quit_on_close = app.quitOnLastWindowClosed()
    app.setQuitOnLastWindowClosed(False)
    try:
        app.exec()
    finally:
        window.close()
        app.setQuitOnLastWindowClosed(quit_on_close)
    return code[0]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.screenshot:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    else:
        problem = display_problem()
        if problem:
            print(problem, file=sys.stderr)
            return 1
    app = make_application(args.theme)
    if args.view:
        from .views import view_names      # only when asked: the views load after the first paint otherwise

    if args.view and args.view not in view_names():
        print(f"latent-explorer: there is no view '{args.view}'; views: {', '.join(view_names()) or 'none yet'}",
              file=sys.stderr)
        return 2
    window = build_window(args.weights, args.device, args.data, args.view, args.model,
                          remember=not args.screenshot, session=args.session)
    hold_collector(window)
    if args.screenshot:
        return take_screenshot(app, window, args.screenshot, args.size, args.timeout)
    window.show()
    code = app.exec()
    window.engine.shutdown()
    return code


if __name__ == "__main__":
    sys.exit(main())
