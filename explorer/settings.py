"""What the window remembers between runs, in QSettings (an INI file in the user's config folder; tests point
it elsewhere): the recently opened files and session files, the last model and folder, the window's geometry and
the last view.

`Settings(remember=False)` (screenshots) neither reads nor writes: it answers as a first start would, and keeps the
files opened in this run in memory only (so the model picker lists a --model file that is not a shipped one).
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings
from PySide6.QtWidgets import QMainWindow

MAX_RECENT = 8
ORG, APP = "latent-explorer", "latent-explorer"


def app_settings() -> QSettings:
    """The user's settings file."""
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORG, APP)


def _string_list(value) -> list[str]:
    """QSettings gives back a str for a one-item list in INI files, None when unset."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    return [str(v) for v in value]


class Settings:
    """The user's recent files, last model and folder, and window layout."""

    def __init__(self, remember: bool = True) -> None:
        self.remember = remember
        self.store = app_settings()
        self._this_run: list[str] = []          # remember=False: the recent files, never written

    # -- recent files --------------------------------------------------------------------------------------------
    def recent_files(self) -> list[str]:
        return _string_list(self.store.value("files/recent")) if self.remember else list(self._this_run)

    def _set_recent(self, files: list[str]) -> None:
        if self.remember:
            self.store.setValue("files/recent", files)
        else:
            self._this_run = list(files)

    def add_recent(self, path: str) -> None:
        files = [p for p in self.recent_files() if p != path]
        self._set_recent([path, *files][:MAX_RECENT])

    def forget_recent(self, path: str) -> None:
        files = self.recent_files()
        if path in files:
            files.remove(path)
            self._set_recent(files)

    def clear_recent(self) -> None:
        self._set_recent([])

    # -- recent sessions -----------------------------------------------------------------------------------------
    def recent_sessions(self) -> list[str]:
        return _string_list(self.store.value("sessions/recent"))

    def add_recent_session(self, path: str) -> None:
        if self.remember:
            sessions = [p for p in self.recent_sessions() if p != path]
            self.store.setValue("sessions/recent", [path, *sessions][:MAX_RECENT])

    def forget_recent_session(self, path: str) -> None:
        sessions = self.recent_sessions()
        if path in sessions:
            sessions.remove(path)
            self.store.setValue("sessions/recent", sessions)

    def clear_recent_sessions(self) -> None:
        self.store.setValue("sessions/recent", [])

    # -- the last model and folder -------------------------------------------------------------------------------
    def last_model(self) -> str | None:
        """The model the user last looked at (None when not remembering)."""
        last = self.store.value("model/last") if self.remember else None
        return last if isinstance(last, str) else None

    def model_opened(self, path: str, shipped: bool) -> None:
        """Remember `path` as the last model, and among the recent files unless it is a shipped one (this run's
        only, when not remembering)."""
        if self.remember:
            self.store.setValue("model/last", path)
        if not shipped:
            self.add_recent(path)

    def last_dir(self) -> str | None:
        value = self.store.value("files/last_dir")
        return str(value) if value else None

    def file_chosen(self, path: str) -> None:
        if self.remember:
            self.store.setValue("files/last_dir", str(Path(path).parent))

    # -- the window ----------------------------------------------------------------------------------------------
    def restore_window(self, window: QMainWindow) -> str | None:
        """Put the window back where it was; returns the view it last showed (None: none remembered)."""
        if not self.remember:
            return None
        geometry = self.store.value("window/geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            window.restoreGeometry(geometry)
        state = self.store.value("window/state")
        if isinstance(state, QByteArray) and not state.isEmpty():
            window.restoreState(state)
        view = self.store.value("window/view")
        return view if isinstance(view, str) else None

    def save_window(self, window: QMainWindow, view: str | None) -> None:
        if not self.remember:
            return
        self.store.setValue("window/geometry", window.saveGeometry())
        self.store.setValue("window/state", window.saveState())
        if view:
            self.store.setValue("window/view", view)
        self.store.sync()
