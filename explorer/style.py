"""One look for the whole app: Fusion, the system's light or dark palette, a small stylesheet, a matching plot style.

The stylesheet (assets/style.qss, found by `assets_dir`) only adds what a palette cannot say (the error banner,
captions, spacing); its `{name}` placeholders are filled from the palette in use, so light and dark stay
consistent. pyqtgraph's background and foreground follow the same palette.
"""
from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QIcon, QPalette
from PySide6.QtWidgets import QApplication


def assets_dir() -> Path:
    """The icon and style sheet: `explorer/assets/` inside an installed wheel (setup.py maps the checkout's
    `assets/` there), else the checkout's `assets/` beside the package (a checkout or an editable install)."""
    installed = resources.files(__package__ or "explorer").joinpath("assets")
    if installed.is_dir():
        return Path(str(installed))
    return Path(__file__).resolve().parent.parent / "assets"


ASSETS = assets_dir()
THEMES = ("auto", "light", "dark")


def setup_pyqtgraph() -> None:
    """Images are (rows, columns) like numpy; plots in the palette's colours. Called before any view exists, and
    only then: pyqtgraph loads after the window's first paint."""
    import pyqtgraph as pg

    pg.setConfigOptions(imageAxisOrder="row-major", antialias=True)
    app = QApplication.instance()
    if app is not None:
        _plot_colors(app.palette())


def _plot_colors(palette: QPalette) -> None:
    import pyqtgraph as pg

    pg.setConfigOptions(background=palette.color(QPalette.ColorRole.Base),
                        foreground=palette.color(QPalette.ColorRole.Text))


def app_icon() -> QIcon:
    return QIcon(str(ASSETS / "icon.svg"))


def system_is_dark() -> bool:
    """The desktop's colour scheme (Qt 6.5+), else a guess from the default palette's window colour."""
    hints = QGuiApplication.styleHints()
    scheme = getattr(hints, "colorScheme", None)
    if scheme is not None:
        value = scheme()
        if value == Qt.ColorScheme.Dark:
            return True
        if value == Qt.ColorScheme.Light:
            return False
    return QGuiApplication.palette().color(QPalette.ColorRole.Window).lightness() < 128


def dark_palette() -> QPalette:
    p = QPalette()
    roles = {
        QPalette.ColorRole.Window: "#202124", QPalette.ColorRole.WindowText: "#e8eaed",
        QPalette.ColorRole.Base: "#17181a", QPalette.ColorRole.AlternateBase: "#26282b",
        QPalette.ColorRole.ToolTipBase: "#2d2f33", QPalette.ColorRole.ToolTipText: "#e8eaed",
        QPalette.ColorRole.Text: "#e8eaed", QPalette.ColorRole.Button: "#2a2c30",
        QPalette.ColorRole.ButtonText: "#e8eaed", QPalette.ColorRole.BrightText: "#ffffff",
        QPalette.ColorRole.Highlight: "#5b8def", QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.Link: "#8ab4f8", QPalette.ColorRole.PlaceholderText: "#9aa0a6",
        QPalette.ColorRole.Mid: "#3c4043", QPalette.ColorRole.Dark: "#111214", QPalette.ColorRole.Light: "#3c4043",
    }
    for role, color in roles.items():
        p.setColor(role, QColor(color))
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor("#7f8389"))
    return p


def light_palette() -> QPalette:
    p = QApplication.style().standardPalette()
    p.setColor(QPalette.ColorRole.Highlight, QColor("#2f6fde"))
    p.setColor(QPalette.ColorRole.Link, QColor("#1a5fd0"))
    return p


def _colors(dark: bool, palette: QPalette) -> dict[str, str]:
    text = palette.color(QPalette.ColorRole.WindowText)
    window = palette.color(QPalette.ColorRole.Window)
    muted = QColor(
        *(int(0.6 * a + 0.4 * b) for a, b in zip(text.getRgb()[:3], window.getRgb()[:3])))
    return {
        "window": window.name(), "text": text.name(), "muted": muted.name(),
        "base": palette.color(QPalette.ColorRole.Base).name(),
        "accent": palette.color(QPalette.ColorRole.Highlight).name(),
        "border": "#3c4043" if dark else "#d0d4da",
        "banner_bg": "#4a1f1f" if dark else "#fdecea",
        "banner_fg": "#ffd7d2" if dark else "#7a1a12",
        "banner_border": "#8c3a32" if dark else "#f1b0a8",
        "caption_bg": "#26282b" if dark else "#f3f5f8",
        "assets": ASSETS.as_posix(),
    }


def apply_theme(app: QApplication, theme: str = "auto") -> bool:
    """Fusion with a light or dark palette ('auto' follows the system); returns True when dark."""
    if theme not in THEMES:
        raise ValueError(f"theme must be one of {', '.join(THEMES)}")
    app.setStyle("Fusion")
    dark = system_is_dark() if theme == "auto" else theme == "dark"
    palette = dark_palette() if dark else light_palette()
    app.setPalette(palette)
    colors = _colors(dark, palette)
    qss = (ASSETS / "style.qss").read_text(encoding="utf-8")
    for name, value in colors.items():
        qss = qss.replace("{" + name + "}", value)
    app.setStyleSheet(qss)
    app.setProperty("darkTheme", dark)
    if "pyqtgraph" in sys.modules:          # else setup_pyqtgraph applies the palette when the views are built
        _plot_colors(palette)
    return dark


def follow_system(app: QApplication, theme: str) -> None:
    """With theme 'auto', re-apply when the desktop switches between light and dark."""
    hints = QGuiApplication.styleHints()
    if theme == "auto" and hasattr(hints, "colorSchemeChanged"):
        hints.colorSchemeChanged.connect(lambda *_: apply_theme(app, "auto"))
