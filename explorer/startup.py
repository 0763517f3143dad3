"""The window's start-up sequence, as an object of its own: list the models, open the one to start with (the
--model the user named, else the last one used, else the first shipped one), and if that fails fall back to a
shipped model the start has not tried yet.

    listing --models listed--> loading --model open, or failed with nothing left to try--> done
    listing --no models at all--> done (nothing_to_open says what to do)
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from models.catalog import ModelEntry
from models.weights import user_models_dir

from .settings import Settings
from .state import AppState

LISTING, LOADING, DONE = "listing", "loading", "done"


class Startup(QObject):
    """Drives the state through the first model; the window forwards the state's answers to it."""

    finished = Signal()              # the first model is loaded, failed, or there was nothing to load
    nothing_to_open = Signal(str)    # no models at all: what the user can do about it
    fell_back = Signal(str)          # the model asked for failed: why, and which shipped one opens instead

    def __init__(self, state: AppState, settings: Settings, initial_model: str | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.settings = settings
        self.initial_model = initial_model
        self.phase = LISTING
        self.tried: list[str] = []       # models the start-up tried to open, in order

    @property
    def done(self) -> bool:
        return self.phase == DONE

    def models_listed(self, entries: list[ModelEntry]) -> None:
        if self.phase != LISTING:
            return
        target = self.first_model(entries)
        if target is None:
            where = self.state.weights_dir or "the weights folder"
            self.nothing_to_open.emit(f"No models in {where}. Open a .safetensors checkpoint (File → Open), or "
                                      "train one: python -m models train --family vae --latent-dim 2 "
                                      f"--out {user_models_dir() / 'vae-2d.safetensors'}")
            self._finish()
            return
        self.phase = LOADING
        self.tried.append(target)
        self.state.open_model(target)

    def model_opened(self) -> None:
        if self.phase == LOADING:
            self._finish()

    def model_failed(self, path: str, message: str) -> bool:
        """The model the start opened failed: open a shipped one not tried yet. True if the start handled it
        (a fallback is on its way)."""
        if self.phase != LOADING:
            return False
        fallback = self.fallback_model()
        if fallback is not None:
            self.fell_back.emit(f"{Path(path).name} could not be opened: {message.rstrip('.')}. "
                                f"Showing the shipped {Path(fallback).stem} instead.")
            self.tried.append(fallback)
            self.state.open_model(fallback)
            return True
        self._finish()
        return False

    def first_model(self, entries: list[ModelEntry]) -> str | None:
        """--model (a name or a path), else the last model used, else the first shipped one."""
        wanted = self.initial_model
        if wanted:
            for e in entries:
                if wanted in (e.name, e.path) or Path(wanted).resolve() == Path(e.path).resolve():
                    return e.path
            return wanted                 # a path not in the list: opening it says what is wrong with it
        last = self.settings.last_model()
        if last is not None and any(e.path == last for e in entries):
            return last
        shipped = [e for e in entries if e.shipped]
        return (shipped or entries)[0].path if entries else None

    def fallback_model(self) -> str | None:
        """The default shipped model, if the start-up has not tried it yet (a bad --model or recent file)."""
        shipped = [e.path for e in self.state.models if e.shipped and e.path not in self.tried]
        return shipped[0] if shipped else None

    def _finish(self) -> None:
        if self.phase != DONE:
            self.phase = DONE
            self.finished.emit()
