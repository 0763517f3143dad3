"""The main window: a model picker, the registered views as tabs, an error banner and a status bar.

It owns no model logic: it asks the state to open files and shows what the state and the engine say. Its start-up
sequence (which model to open first) is a `Startup` (startup.py); what it remembers between runs (recent files,
geometry, the last view and model) is a `Settings` (settings.py). A session file (session.py) is read and checked
whole before anything changes; then the window opens its model, waits for it, and hands each view its part.
A model's hash (for a session) is made on a thread of its own, never on this one: a model is read whole to hash it.
"""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (QComboBox, QFileDialog, QFrame, QHBoxLayout, QLabel, QMainWindow, QMenu, QMessageBox,
                               QProgressBar, QScrollArea, QTabWidget, QToolBar, QToolButton, QVBoxLayout, QWidget)

from models.catalog import ModelEntry, ModelInfo
from models.weights import user_models_dir

from . import style
from .session import (Session, SessionError, check_session, hash_quietly, is_session_file, known_refs, model_ref,
                      read_session, write_session)
from .settings import Settings
from .startup import LISTING, Startup
from .state import AppState, model_summary
from .views.base import View

ACTIVITY_DELAY_MS = 250
ENGINE_START_FALLBACK_MS = 1500     # a window that is never painted (hidden, minimised) still starts its engine
BUILD_REST_FALLBACK_MS = 3000       # the tabs not on screen are built this long after the first model at the latest
HASH_POLL_MS = 20                   # how often the window looks whether a hash it waits on is made


class Banner(QFrame):
    """A non-modal error line above the views, dismissable; the app keeps working underneath."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("banner")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 2, 4, 2)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QToolButton()
        close.setText("✕")
        close.setToolTip("Dismiss")
        close.setAccessibleName("Dismiss message")
        close.clicked.connect(self.hide)
        layout.addWidget(self.label, 1)
        layout.addWidget(close, 0, Qt.AlignmentFlag.AlignTop)
        self.hide()

    def show_message(self, text: str) -> None:
        self.label.setText(text)
        self.show()

    @property
    def text(self) -> str:
        return "" if self.isHidden() else self.label.text()


class _ViewFrame(QWidget):
    """What a view's scroll area scrolls: as tall as the page, or the view's minimum if that is taller.

    A view whose images keep their aspect (height-for-width) would otherwise ask the scroll area for the height
    its width allows, and stretch far below the window."""

    def hold(self, view: QWidget) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(view)

    def hasHeightForWidth(self) -> bool:
        return False

    def heightForWidth(self, width: int) -> int:
        return -1


def same_file(a: str | None, b: str | None) -> bool:
    """Whether two paths name one model file ("weights/x.safetensors" and its absolute path, a symlink)."""
    if a is None or b is None:
        return False
    try:
        return a == b or Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


@dataclass
class _OpeningSession:
    """A session read, waiting for its models' check (`check`: check_session's answer, made off the UI thread) and
    for its model to open (`model`: the path asked; None: the model shown). `problems`: what went wrong since."""

    session: Session
    file: str
    model: str | None
    check: Future
    problems: list[str] = field(default_factory=list)


class MainWindow(QMainWindow):
    """Latent Explorer's window. `remember=False` (screenshots) neither reads nor writes the user's settings."""

    startup_finished = Signal()         # the first model is loaded, failed, or there was nothing to load
    first_painted = Signal()            # the window's frame has been painted once
    views_built = Signal()              # every view is built (while the engine thread imports torch)
    session_restored = Signal(list)     # a session's parts are handed to the views: what could not be restored
    session_saved = Signal(str)         # a session file is written: its path

    def __init__(self, state: AppState, *, initial_view: str | None = None, initial_model: str | None = None,
                 initial_session: str | None = None, remember: bool = True, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.engine = state.engine
        self.remember = remember
        self.settings = Settings(remember)
        self._session: _OpeningSession | None = None
        self._session_error = ""
        self._hashing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model-hash")   # one disk reader
        self._hashing_ahead: list[Future] = []     # nobody waits on these: cancelled if still queued at close
        self._waiting: list[tuple[Future, Callable[[], None]]] = []
        self._saving: set[Future] = set()          # sessions being written (kept at close)
        self._poll = QTimer(self)
        self._poll.setInterval(HASH_POLL_MS)
        self._poll.timeout.connect(self._finish_done_work)
        if initial_session:
            initial_model = self._read_initial_session(initial_session) or initial_model
        self.startup = Startup(state, self.settings, initial_model, self)
        self.startup.finished.connect(self._on_startup_finished)
        self.startup.nothing_to_open.connect(self._on_nothing_to_open)
        self.startup.fell_back.connect(lambda text: self.show_error(0, "startup", text))
        self._painted = False
        self._ready: dict[str, bool] = {}
        self._shipped: set[str] = set()
        self.last_error = ""
        self.setObjectName("mainWindow")
        self.setWindowTitle("Latent Explorer")
        self.setWindowIcon(style.app_icon())
        self.setAcceptDrops(True)

        # Connected before any view exists, so a view that is ready at once is not reset after it said so.
        state.model_changed.connect(self._on_model_changed)
        state.models_listed.connect(self._on_models_listed)
        state.model_failed.connect(self._on_model_failed)
        state.loading.connect(self._on_loading)
        self.engine.failed.connect(self.show_error)
        self.engine.activity.connect(self._on_activity)
        self.engine.device_ready.connect(self._on_device)

        self._build_toolbar()
        self._build_central()
        self._build_status()
        self._build_menus()
        self._rest_started = self._all_built = False
        self._build_tabs()
        self._restore()
        if initial_view:
            self.show_view(initial_view)
        state.list_models(self.recent_files() if remember else ())
        # torch is imported on the engine thread when it starts: after the first paint, so the window is up first
        QTimer.singleShot(ENGINE_START_FALLBACK_MS, self._after_first_paint)

    # -- building ------------------------------------------------------------------------------------------------
    def _build_toolbar(self) -> None:
        bar = QToolBar("Model")
        bar.setObjectName("modelBar")
        bar.setMovable(False)
        bar.addWidget(QLabel("Model"))
        self.picker = QComboBox()
        self.picker.setObjectName("modelPicker")
        self.picker.setToolTip("The model whose latent space the views show. File → Open adds any .safetensors "
                               "checkpoint, File → Open Folder a folder saved by diffusers; you can also drop "
                               "either on the window.")
        self.picker.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.picker.activated.connect(self._on_picked)
        bar.addWidget(self.picker)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)

    def _build_central(self) -> None:
        """The banner and the tab bar; the tabs, their captions and the views come once the frame is painted."""
        central = QWidget()
        self._central_layout = QVBoxLayout(central)
        self._central_layout.setContentsMargins(0, 0, 0, 0)
        self._central_layout.setSpacing(0)
        self.banner = Banner()
        self._central_layout.addWidget(self.banner)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self._central_layout.addWidget(self.tabs, 1)
        self._views: dict[str, View] = {}
        self._pages: dict[str, QVBoxLayout] = {}
        self.captions: dict[str, QLabel] = {}
        self.setCentralWidget(central)

    def _build_tabs(self) -> None:
        """A tab per registered view with its caption: names and words only, no view's module is imported."""
        from .views import views

        self._specs = views()
        for spec in self._specs:
            page = QWidget()
            page_layout = QVBoxLayout(page)
            page_layout.setContentsMargins(0, 0, 0, 0)
            page_layout.setSpacing(0)
            caption = QLabel(spec.caption)
            caption.setObjectName("viewCaption")
            caption.setWordWrap(True)
            page_layout.addWidget(caption)
            page_layout.addStretch(1)
            self.tabs.addTab(page, spec.title)
            self._pages[spec.name] = page_layout
            self.captions[spec.name] = caption
            self._ready[spec.name] = False
        if not self._specs:
            self.tabs.hide()
            empty = QLabel("No views are installed yet.")
            empty.setObjectName("emptyState")
            empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
            self._central_layout.addWidget(empty, 1)
        for i, spec in enumerate(self._specs):
            action = QAction(spec.title, self)
            if i < 9:
                action.setShortcut(QKeySequence(f"Ctrl+{i + 1}"))
            action.triggered.connect(partial(self.show_view, spec.name))
            self.view_menu.addAction(action)
        self.view_menu.setEnabled(bool(self._specs))
        self._menus: dict[str, QMenu] = {}
        for spec in self._specs:
            if spec.menu:                                  # in the menu bar before the view exists; opening it
                menu = QMenu(spec.menu, self)              # builds the view, which fills it
                menu.aboutToShow.connect(partial(self._build_view, spec.name))
                self.menuBar().insertMenu(self._help_menu.menuAction(), menu)
                self._menus[spec.name] = menu
        self.tabs.currentChanged.connect(self._tab_shown)     # a tab not built yet is built when it is shown

    def _after_first_paint(self) -> None:
        """Second stage of the start, once the frame with its tabs and captions is on screen: the engine thread
        starts importing torch, and meanwhile this thread builds the view on screen (importing pyqtgraph), so
        the two overlap. The other views are built once that view has drawn its first picture."""
        if not self.engine.started:
            self.engine.start()
        current = self.current_view()
        if current is not None:
            self._build_view(current)

    def view(self, name: str) -> View:
        """The view `name`, built now if it was not yet (the others are left to their turn)."""
        return self._build_view(name)

    @property
    def view_widgets(self) -> dict[str, View]:
        """Every view, by name; built on first use (the window paints its frame before it builds them)."""
        for spec in self._specs:
            self._build_view(spec.name)
        return self._views

    def _start_building_rest(self) -> None:
        """Once, when the view on screen has drawn (or a while after the first model): the other views."""
        if not self._rest_started:
            self._rest_started = True
            QTimer.singleShot(0, self._build_rest)

    def _build_rest(self) -> None:
        """Build the views not built yet, one per turn of the event loop, so input is served between them."""
        missing = [spec.name for spec in self._specs if spec.name not in self._views]
        if missing:
            self._build_view(missing[0])
            QTimer.singleShot(0, self._build_rest)
        elif not self._all_built:
            self._all_built = True
            self.views_built.emit()

    def _build_view(self, name: str) -> View:
        """The view called `name`, built the first time it is asked for (imports its module)."""
        widget = self._views.get(name)
        if widget is not None:
            return widget
        spec = next(spec for spec in self._specs if spec.name == name)
        if not self._views:
            style.setup_pyqtgraph()                    # before the first view: pyqtgraph loads here
        page_layout = self._pages[spec.name]
        # each view sits in a scroll area: a window smaller than a view's minimum scrolls, never clips or
        # forces the window to grow (a small screen, a tiled window manager)
        scroll = QScrollArea(page_layout.parentWidget())
        scroll.setObjectName(f"viewScroll-{spec.name}")
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        frame = _ViewFrame()
        widget = spec.cls(self.state, frame)
        frame.hold(widget)
        scroll.setWidget(frame)
        stretch = page_layout.takeAt(1)            # the placeholder stretch gives way to the view
        del stretch
        page_layout.addWidget(scroll, 1)
        self._views[spec.name] = widget
        widget.ready.connect(partial(self._mark_ready, spec.name))
        widget.caption_changed.connect(self.captions[spec.name].setText)
        if spec.name in self._menus:                # its own menu (Train → New model…), there from the start
            widget.fill_menu(self._menus[spec.name])
        return widget

    def _tab_shown(self, index: int) -> None:
        if 0 <= index < len(self._specs) and self._painted:
            self._build_view(self._specs[index].name)

    def _build_status(self) -> None:
        bar = self.statusBar()
        self.activity_label = QLabel("Loading the model library…")
        self.activity_label.setObjectName("activity")
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setMaximumSize(80, 12)
        self.busy.setTextVisible(False)
        self.busy.setVisible(False)
        keep = self.busy.sizePolicy()
        keep.setRetainSizeWhenHidden(True)         # showing it must not shift the status line
        self.busy.setSizePolicy(keep)
        # A decode during a drag takes a few ms: saying so would make the status bar flicker. Work is shown
        # only once it has lasted a moment.
        self._activity_text = ""
        self._activity_timer = QTimer(self)
        self._activity_timer.setSingleShot(True)
        self._activity_timer.setInterval(ACTIVITY_DELAY_MS)
        self._activity_timer.timeout.connect(self._show_activity)
        self.model_label = QLabel("No model")
        self.latent_label = QLabel("")
        self.device_label = QLabel("Device: …")
        self.device_label.setToolTip("Where the models run: CUDA, then Apple MPS, then the CPU; --device overrides.")
        bar.addWidget(self.activity_label, 1)
        bar.addPermanentWidget(self.busy)
        for label in (self.model_label, self.latent_label, self.device_label):
            bar.addPermanentWidget(label)

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self.open_action = QAction("&Open Model…", self)
        self.open_action.setShortcut(QKeySequence.StandardKey.Open)
        self.open_action.triggered.connect(self.open_dialog)
        file_menu.addAction(self.open_action)
        self.open_folder_action = QAction("Open &Folder…", self)
        self.open_folder_action.setToolTip("Open a folder saved by diffusers: a DDPM or DDIM pipeline, or a UNet "
                                           "with its scheduler config")
        self.open_folder_action.triggered.connect(self.open_folder_dialog)
        file_menu.addAction(self.open_folder_action)
        self.recent_menu = file_menu.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        file_menu.addSeparator()
        self.open_session_action = QAction("Open S&ession…", self)
        self.open_session_action.triggered.connect(self.open_session_dialog)
        file_menu.addAction(self.open_session_action)
        self.recent_sessions_menu = file_menu.addMenu("Open Recent Session")
        self.recent_sessions_menu.aboutToShow.connect(self._fill_recent_sessions_menu)
        self.save_session_action = QAction("Save Sessio&n…", self)
        self.save_session_action.setToolTip("Keep the model, the view, probes, pins, keyframes and seeds in one "
                                            "small file, to come back to the same pictures later")
        self.save_session_action.triggered.connect(self.save_session_dialog)
        file_menu.addAction(self.save_session_action)
        file_menu.addSeparator()
        shot = QAction("Save &Screenshot…", self)
        shot.setShortcut(QKeySequence("Ctrl+Shift+S"))
        shot.triggered.connect(self.save_screenshot_dialog)
        file_menu.addAction(shot)
        file_menu.addSeparator()
        quit_action = QAction("&Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)

        self.view_menu = self.menuBar().addMenu("&View")        # one entry per view, once the tabs exist

        help_menu = self.menuBar().addMenu("&Help")
        self._help_menu = help_menu
        about = QAction("&About Latent Explorer", self)
        about.triggered.connect(self._about)
        help_menu.addAction(about)

    # -- views ---------------------------------------------------------------------------------------------------
    def show_view(self, name: str) -> None:
        names = [spec.name for spec in self._specs]
        if name not in names:
            raise KeyError(f"there is no view '{name}'; views: {', '.join(names) or 'none yet'}")
        self.tabs.setCurrentIndex(names.index(name))

    def current_view(self) -> str | None:
        names = [spec.name for spec in self._specs]
        i = self.tabs.currentIndex()
        return names[i] if 0 <= i < len(names) else None

    def view_is_ready(self, name: str | None = None) -> bool:
        """True when the view has said `ready` since the last model change."""
        name = name or self.current_view()
        if name is None:
            return True
        self._build_view(name)               # (a view not built yet is built now: it cannot be ready before)
        return self._ready.get(name, False)

    def _mark_ready(self, name: str, *args) -> None:
        self._ready[name] = True
        if name == self.current_view():
            self._start_building_rest()                    # the first picture is out: the other tabs now

    # -- models --------------------------------------------------------------------------------------------------
    @property
    def startup_done(self) -> bool:
        return self.startup.done

    def _on_startup_finished(self) -> None:
        if self._session_error:
            self.show_error(0, "session", self._session_error)
        opening = self._session
        if opening is not None:
            if self._start_opened(opening.model):
                self._after_start_opened(opening)
            else:                                  # it came while the start opened another model: its turn now
                self._when_done(opening.check, partial(self._open_checked, opening))
        self.startup_finished.emit()
        # the view on screen says when it has drawn and the rest follow; this is in case it never does
        QTimer.singleShot(BUILD_REST_FALLBACK_MS, self._start_building_rest)

    def _start_opened(self, model: str | None) -> bool:
        """Whether the start tried to open `model` first (the session's, from the command line or named in time)."""
        return model is not None and any(same_file(model, tried) for tried in self.startup.tried)

    def _after_start_opened(self, opening: _OpeningSession) -> None:
        """The start opened the session's model: _on_model_changed restores it; if it failed and the start fell
        back, say so and restore on what is shown."""
        if self.state.model is not None and same_file(self.state.model.path, opening.model):
            return
        opening.problems.append(f"The session's model {Path(opening.model).name} could not be opened.")
        opening.model = None
        QTimer.singleShot(0, self._restore_session)

    def _on_nothing_to_open(self, text: str) -> None:
        self.show_error(0, "startup", text)
        self.activity_label.setText("No model")

    def _on_models_listed(self, entries: list[ModelEntry]) -> None:
        self._shipped = {e.path for e in entries if e.shipped}
        self._fill_picker(entries)
        opening = self._session
        if opening is not None and self.startup.phase == LISTING and opening.model is None and opening.session.model:
            # a session whose model moved (another checkout's weights): found by name and hash, then the start
            opening.check = self._hashing.submit(check_session, opening.session, [e.path for e in entries])
            self._when_done(opening.check, partial(self._start_with_found, opening, opening.check, entries))
            return
        self.startup.models_listed(entries)

    def _start_with_found(self, opening: _OpeningSession, check: Future, entries: list[ModelEntry]) -> None:
        """The start goes on, with the session's moved model first if it was found. A later listing (models
        listed again while this check ran) replaced the check: the start waits for that one instead."""
        if opening.check is not check:
            return
        found, _ = check.result()
        if found is not None and self._session is opening:
            opening.model = self.startup.initial_model = found
        self.startup.models_listed(entries)

    def _fill_picker(self, entries: list[ModelEntry]) -> None:
        self.picker.blockSignals(True)
        self.picker.clear()
        shipped = [e for e in entries if e.shipped]
        opened = [e for e in entries if not e.shipped]
        for e in shipped:
            self.picker.addItem(e.label, e.path)
            self.picker.setItemData(self.picker.count() - 1, e.path, Qt.ItemDataRole.ToolTipRole)
        if shipped and opened:
            self.picker.insertSeparator(self.picker.count())
        for e in opened:
            self.picker.addItem(f"{e.label}  (opened)", e.path)
            self.picker.setItemData(self.picker.count() - 1, e.path, Qt.ItemDataRole.ToolTipRole)
        if not entries:
            self.picker.addItem("No models — File → Open…", None)
        self.picker.blockSignals(False)
        self._select_current()

    def _select_current(self) -> None:
        """The picker shows the model the views show: the state's, or nothing when there is none."""
        model = self.state.model
        index = self.picker.findData(model.path) if model is not None else -1
        self.picker.blockSignals(True)
        if index >= 0 or (model is None and self.picker.itemData(self.picker.currentIndex()) is not None):
            self.picker.setCurrentIndex(index)
        self.picker.blockSignals(False)

    def _on_picked(self, index: int) -> None:
        path = self.picker.itemData(index)
        if path and (self.state.model is None or path != self.state.model.path):
            self.state.open_model(path)

    def _on_loading(self, path: str) -> None:
        self.activity_label.setText(f"Loading {Path(path).name}…")

    def _on_model_changed(self, info: ModelInfo | None) -> None:
        for name in self._ready:
            self._ready[name] = False
        if info is None:
            self.model_label.setText("No model")
            self.latent_label.setText("")
            return
        self.setWindowTitle(f"{info.name} — Latent Explorer")
        self.model_label.setText(f"Model: {info.name} ({info.title})")
        self.latent_label.setText(f"Latent: {info.latent_dim}-d")
        tip = model_summary(info)
        if not info.has_classifier and info.classifier_reason:
            tip += f"\nno class labels: {info.classifier_reason}"
        self.model_label.setToolTip(tip)
        self.settings.model_opened(info.path, shipped=info.path in self._shipped)   # (not remembering: this run's)
        self._hashing_ahead = [f for f in self._hashing_ahead if not f.done()]
        self._hashing_ahead.append(self._hashing.submit(hash_quietly, info.path))   # a session's save finds it made
        if info.path not in self._shipped:
            self.state.list_models(self.recent_files())      # the picker lists it, --screenshot's --model PATH too
        self._select_current()
        self.startup.model_opened()
        if self._session is not None and same_file(self._session.model, info.path) and self.startup.done:
            QTimer.singleShot(0, self._restore_session)    # once every view has reset for the model

    def _on_model_failed(self, path: str, message: str) -> None:
        if not Path(path).exists():
            self.forget_recent(path)
        if self.startup.model_failed(path, message):
            return                        # a shipped model is on its way instead
        self._select_current()
        opening = self._session
        if opening is not None and same_file(opening.model, path) and self.startup.done:
            opening.problems.append(f"The session's model {Path(path).name} could not be opened: "
                                    f"{message.rstrip('.')}.")
            opening.model = None
            QTimer.singleShot(0, self._restore_session)

    def open_path(self, path: str | Path) -> None:
        """Open a checkpoint the user chose (menu, recent list or drop); a bad file shows why in the banner."""
        path = str(Path(path).expanduser())
        self.settings.file_chosen(path)
        self.state.open_model(path)

    def _dialog_start(self) -> str:
        mine = user_models_dir()
        return str(self.settings.last_dir() or (mine if mine.is_dir() else None)
                   or self.state.weights_dir or Path.home())

    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a model", self._dialog_start(),
                                              "Models (*.safetensors model_index.json);;All files (*)")
        if path:
            self.open_path(path)

    def open_folder_dialog(self) -> None:
        """File → Open Folder…: a folder saved by diffusers opens as it is (no file inside it to pick)."""
        path = QFileDialog.getExistingDirectory(self, "Open a folder saved by diffusers", self._dialog_start())
        if path:
            self.open_path(path)

    def save_screenshot_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save a screenshot", str(Path.home() / "latent-explorer.png"),
                                              "PNG images (*.png)")
        if path and not self.grab().save(path):
            self.show_error(0, "screenshot", f"Could not write {path}")

    # -- sessions ------------------------------------------------------------------------------------------------
    def session_parts(self) -> tuple[list[str], str | None, dict]:
        """What a session keeps, read on this thread: the models shown (the picker's first, then any other a view
        runs on, such as the diffusion tab's shipped DDPM), the view on screen and every built view's part (a view
        never built shows nothing a session would keep). The models' hashes are made apart (see save_session)."""
        paths = [self.state.model.path] if self.state.model is not None else []
        paths += [v.target for v in self._views.values() if v.target and paths and v.target not in paths]
        views = {name: view.session_state() for name, view in self._views.items()}
        return list(dict.fromkeys(paths)), self.current_view(), {k: v for k, v in views.items() if v}

    def save_session(self, path: str | Path) -> bool:
        """Write the session to `path` (atomically); session_saved says when it is written. At once when every
        model's hash is made (it is made when a model opens), else once a thread has made it. False: refused at
        once; a failure, now or later, says why in the banner and loses nothing."""
        path = str(Path(path).expanduser())
        paths, view, views = self.session_parts()
        refs = known_refs(paths)
        if refs is not None:
            return self._saved(path, lambda: write_session(path, Session(refs, view, views)))
        self.activity_label.setText("Saving the session…")
        job = self._hashing.submit(lambda: write_session(path, Session(tuple(map(model_ref, paths)), view, views)))
        self._saving.add(job)
        self._when_done(job, partial(self._save_done, path, job))
        return True

    def _save_done(self, path: str, job: Future) -> None:
        self._saving.discard(job)
        self._saved(path, job.result)

    def _saved(self, path: str, write: Callable[[], object]) -> bool:
        """Run (or collect) the write and say how it went."""
        try:
            write()
        except SessionError as err:
            self.show_error(0, "session", str(err))
            return False
        except OSError as err:
            self.show_error(0, "session", f"The session could not be saved to {path}: {err.strerror or err}.")
            return False
        self.settings.add_recent_session(path)
        self.activity_label.setText(f"Session saved to {Path(path).name}")
        self.session_saved.emit(path)
        return True

    def save_session_dialog(self) -> None:
        start = str(Path(self.settings.last_dir() or Path.home()) / "session.json")
        path, _ = QFileDialog.getSaveFileName(self, "Save the session", start, "Latent Explorer sessions (*.json)")
        if path:
            self.save_session(path if Path(path).suffix else path + ".json")

    def open_session_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a session", str(self.settings.last_dir() or Path.home()),
                                              "Latent Explorer sessions (*.json);;All files (*)")
        if path:
            self.open_session(path)

    def open_session(self, path: str | Path) -> bool:
        """Read and check the file whole; a bad file says why in one sentence, changes nothing and is refused
        (False). Else the session waits while a thread checks its models, then its model opens (if it is not the
        one shown) and each view gets its part (session_restored). Before the start is done it waits for the start,
        and a later session replaces it."""
        path = str(Path(path).expanduser())
        try:
            session = read_session(path)
        except SessionError as err:
            self.show_error(0, "session", str(err))
            if not Path(path).is_file():
                self.settings.forget_recent_session(path)
            return False
        self.settings.add_recent_session(path)
        if not self.startup.done:
            self._wait_for_start(session, path)
            return True
        self.activity_label.setText("Checking the session's model…")
        check = self._hashing.submit(check_session, session, [e.path for e in self.state.models])
        self._session = _OpeningSession(session, path, None, check)
        self._when_done(check, partial(self._open_checked, self._session))
        return True

    def _open_checked(self, opening: _OpeningSession) -> None:
        """Its models are checked: open its model, or hand the views their parts on the model shown."""
        if self._session is not opening:
            return                                 # a later session took its place
        opening.model, _ = opening.check.result()
        if opening.model is not None and (self.state.model is None
                                          or not same_file(self.state.model.path, opening.model)):
            self.state.open_model(opening.model)  # _on_model_changed restores once it is open
        else:
            opening.model = None
            QTimer.singleShot(0, self._restore_session)

    def _pend_session(self, session: Session, path: str) -> str | None:
        """Keep a session for the end of the start, its models checked meanwhile off this thread; the model it
        names, if that is there (a moved one is looked for once the models are listed), is the start's to open."""
        ref = session.model
        model = ref.path if ref is not None and Path(ref.path).exists() else None
        check = self._hashing.submit(check_session, session, [e.path for e in self.state.models])
        self._session = _OpeningSession(session, path, model, check)
        return model

    def _wait_for_start(self, session: Session, path: str) -> None:
        """A session opened while the app starts: if the start has not picked its first model, the session's is
        the one it opens, as from the command line; else _on_startup_finished opens it once the start is done."""
        model = self._pend_session(session, path)
        if model is not None and self.startup.phase == LISTING:
            self.startup.initial_model = model
        else:
            self._session.model = None             # not the start's to open

    def _read_initial_session(self, path: str) -> str | None:
        """`latent-explorer SESSION.json`: the session waits for the start, and its model is the one to open first
        (None: it names none, or none that is there). A bad file is said once the start is done, which goes on
        as without it."""
        try:
            session = read_session(path)
        except SessionError as err:
            self._session_error = str(err)
            return None
        self.settings.add_recent_session(path)
        return self._pend_session(session, path)

    def _restore_session(self) -> None:
        """Hand each view its part, on the model the session opened (or the one shown), once its models are
        checked; say what could not be restored."""
        opening = self._session
        if opening is None:
            return
        if not opening.check.done():
            self._when_done(opening.check, partial(self._restore_if_current, opening))
            return
        self._session = None
        problems = opening.check.result()[1] + opening.problems
        session = opening.session
        names = [spec.name for spec in self._specs]
        if session.view in names:
            self.show_view(session.view)
        for name, part in session.views.items():
            if name in names:
                problems += self.view(name).restore_session(part)
        if problems:
            self.show_error(0, "session", " ".join(problems))
        self.activity_label.setText(f"Session {Path(opening.file).name} restored")
        self.session_restored.emit(problems)

    def _restore_if_current(self, opening: _OpeningSession) -> None:
        if self._session is opening:
            self._restore_session()

    # -- work on the hashing thread ------------------------------------------------------------------------------
    def _when_done(self, future: Future, finish: Callable[[], None]) -> None:
        """Call `finish` on this thread once `future` is done (polled: nothing crosses back but the call)."""
        self._waiting.append((future, finish))
        self._poll.start()

    def _finish_done_work(self) -> None:
        done = [w for w in self._waiting if w[0].done()]
        self._waiting = [w for w in self._waiting if w not in done]
        if not self._waiting:
            self._poll.stop()
        for _, finish in done:
            finish()

    @property
    def session_pending(self) -> bool:
        """A session is read and waits for its model or for its turn to be handed to the views (--screenshot)."""
        return self._session is not None

    def recent_sessions(self) -> list[str]:
        return self.settings.recent_sessions()

    def _fill_recent_sessions_menu(self) -> None:
        menu = self.recent_sessions_menu
        menu.clear()
        sessions = self.recent_sessions()
        for path in sessions:
            action = menu.addAction(Path(path).name)
            action.setToolTip(path)
            action.setStatusTip(path)
            action.triggered.connect(partial(self.open_session, path))
        if sessions:
            menu.addSeparator()
            menu.addAction("Clear Menu").triggered.connect(self.settings.clear_recent_sessions)
        else:
            menu.addAction("No recent sessions").setEnabled(False)

    # -- recent files --------------------------------------------------------------------------------------------
    def recent_files(self) -> list[str]:
        return self.settings.recent_files()

    def add_recent(self, path: str) -> None:
        self.settings.add_recent(path)

    def forget_recent(self, path: str) -> None:
        self.settings.forget_recent(path)

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        files = self.recent_files()
        for path in files:
            action = self.recent_menu.addAction(Path(path).name)
            action.setToolTip(path)
            action.setStatusTip(path)
            action.triggered.connect(partial(self.open_path, path))
        if files:
            self.recent_menu.addSeparator()
            clear = self.recent_menu.addAction("Clear Menu")
            clear.triggered.connect(lambda: (self.settings.clear_recent(), self.state.list_models(())))
        else:
            none = self.recent_menu.addAction("No recent models")
            none.setEnabled(False)

    # -- drag and drop -------------------------------------------------------------------------------------------
    @staticmethod
    def _dropped_file(event) -> str | None:
        mime = event.mimeData()
        if not mime.hasUrls():
            return None
        for url in mime.urls():
            if url.isLocalFile():
                return url.toLocalFile()
        return None

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if self._dropped_file(event):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        path = self._dropped_file(event)
        if path:
            event.acceptProposedAction()
            if is_session_file(path):
                self.open_session(path)       # a session; a model is a .safetensors file or a folder
            else:
                self.open_path(path)

    # -- status and errors ---------------------------------------------------------------------------------------
    def show_unexpected(self, sentence: str) -> None:
        """An exception escaped a slot (explorer.error_hook logged it with its traceback): say so, keep working."""
        self.show_error(0, "unexpected", sentence)

    def show_error(self, job_id: int, key: str, message: str) -> None:
        """Every engine error lands here: a banner above the views, until the user dismisses it or the next one."""
        self.last_error = message
        self.banner.show_message(message)

    def _on_activity(self, text: str) -> None:
        self._activity_text = text
        if text:
            if not self.busy.isVisible() and not self._activity_timer.isActive():
                self._activity_timer.start()
            elif self.busy.isVisible():
                self._show_activity()
        else:
            self._activity_timer.stop()
            self._show_activity()

    def _show_activity(self) -> None:
        text = self._activity_text
        self.busy.setVisible(bool(text))
        self.activity_label.setText(text[:1].upper() + text[1:] + "…" if text else "Ready")

    @property
    def activity_text(self) -> str:
        """What the engine is doing now ('' when idle), whether or not the status bar shows it yet."""
        return self._activity_text

    def _on_device(self, name: str) -> None:
        self.device_label.setText(f"Device: {name}")
        if self.activity_label.text() == "Loading the model library…":
            self.activity_label.setText("Ready" if self.startup_done else "Looking for the models…")

    def _about(self) -> None:
        QMessageBox.about(self, "About Latent Explorer",
                          "<b>Latent Explorer</b><p>See and touch the latent spaces of autoencoders, VAEs, GANs, "
                          "VAE-GANs and diffusion models.</p>")

    # -- persistence ---------------------------------------------------------------------------------------------
    def _restore(self) -> None:
        self.resize(1280, 820)
        view = self.settings.restore_window(self)
        if view is not None and view in self._pages:
            self.show_view(view)

    def save_layout(self) -> None:
        self.settings.save_window(self, self.current_view())

    def paintEvent(self, event) -> None:
        super().paintEvent(event)
        if not self._painted:
            self._painted = True
            self.first_painted.emit()
            QTimer.singleShot(0, self._after_first_paint)       # once this frame is out

    def closeEvent(self, event) -> None:
        # a view with work it would lose (a training run) is asked first; it may keep the window open
        for widget in self._views.values():
            if not widget.confirm_close():
                event.ignore()
                return
        self.save_layout()
        self.engine.shutdown()
        self._stop_hashing()
        super().closeEvent(event)

    def _stop_hashing(self) -> None:
        """At close: the hashes nobody will wait for (made ahead, a session's check) are dropped if not begun, no
        session opens on the closed window, and the thread ends once its queue is done (the process waits for it
        at exit). A save already asked for is still written."""
        if self._session is not None:
            self._session.check.cancel()
            self._session = None
        checks = [w for w in self._waiting if w[0] not in self._saving]
        for future, _ in checks:
            future.cancel()
        for future in self._hashing_ahead:
            future.cancel()
        self._waiting = [w for w in self._waiting if w not in checks]
        self._hashing.shutdown(wait=False)
