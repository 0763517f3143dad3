"""The latent map: the test set where the encoder puts it, and probes the decoder turns back into pictures.

A 2-D latent is the map itself. A larger one is shown on the PCA plane through the data mean (exact inside the
plane: a probe at (u, v) decodes z = mean + u e1 + v e2), which the user can re-centre on a pinned image. A GAN
has no encoder, so its map is a plane through z = 0 along two random orthonormal directions; a diffusion model's
"latent" is its start noise x_T, so its map is the plane through three noise seeds, denoised on release.
"""
from __future__ import annotations

import math
from functools import partial

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from models.catalog import DENOISE, ENCODE

from ...engine.job import Result
from ...engine.jobs.common import DecodePoints, DecodeProbe
from ...engine.jobs.map import DenoisePoint, DistanceToData, EncodeTestSet, SamplePosterior
from ..base import View
from ..tabs import MAP
from ..widgets.navigation import attach_reset, limit_zoom, pin_legend
from ..widgets.plane import (Plane, default_range, describe, ellipse, identity_plane, noise_seeds, pca_plane,
                             random_plane, seeds_plane)
from ..widgets.tiles import tile
from .arrows import ArrowsOverlay
from .layers import DistanceLayer, GridLayers, Region
from .posterior import PosteriorOverlay
from .probes import Probe, initial_positions
from .scatter import DataScatter
from .session import LAYERS, MapSession
from .sidebar import MapSidebar

N_PROBES = 2
DDIM_STEPS = 20
N_POSTERIOR_SAMPLES = 8


class LatentMapView(View):
    """`ready`: the map is drawn and every probe shows its decoded image."""

    probe_shown = Signal(int, int)   # probe index, job id: that job's image is now in the probe's panel
    probe_labelled = Signal(int, int)  # probe index, job id: the classifier's label for it is under the image
    layer_drawn = Signal(str)        # "grid" or "distance"
    samples_shown = Signal()

    test_limit: int | None = None    # encode only the first n test images (tests); None: all of them

    def __init__(self, state, parent: QWidget | None = None) -> None:
        super().__init__(state, MAP.name, parent)
        self.info = None
        self.plane: Plane | None = None
        self.plane_frac: np.ndarray | None = None
        self.enc: dict | None = None             # the encoded test set (numpy) for the current model
        self.uv: np.ndarray | None = None        # its points on the plane (N, 2)
        self.pinned: int | None = None
        self.hovered: int | None = None
        self.recentred_on: int | None = None     # the test image the plane was re-centred on, if it was
        self._restoring: MapSession | None = None   # a session's map, waiting for the plane to be drawn
        self._seed = 0
        self._sample_seed = 0
        self._version = 0                        # bumps with every new plane
        self._layer_requests: dict[int, tuple[Region, int]] = {}
        self._layer_asked: dict[str, tuple[Region, int]] = {}
        self._waiting_ready: set[int] = set()

        self.canvas = pg.GraphicsLayoutWidget()
        self.plot = self.canvas.addPlot(row=0, col=0, rowspan=4)
        self.plot.showGrid(x=True, y=True, alpha=0.15)
        self.plot.setMenuEnabled(False)
        for side in ("bottom", "left"):                 # latent units as they are, never "(x0.001)"
            self.plot.getAxis(side).enableAutoSIPrefix(False)
        self.vb = self.plot.getViewBox()
        self.legend = pg.LegendItem(labelTextSize="9pt", verSpacing=-4)
        pin_legend(self.legend)
        self.canvas.addItem(self.legend, row=0, col=1)
        self.canvas.ci.layout.setRowStretchFactor(0, 0)       # legends keep their own height, at the top
        self.canvas.ci.layout.setRowStretchFactor(1, 0)
        self.canvas.ci.layout.setRowStretchFactor(2, 0)
        self.canvas.ci.layout.setRowStretchFactor(3, 1)
        # a colour bar's tick labels reach past the plot's own box: keep the legends clear of them
        self.canvas.ci.layout.setColumnSpacing(0, 50)
        self.scatter = DataScatter(self.plot, self.legend)
        ink = pg.getConfigOption("foreground")     # the palette's text colour: visible on light and dark
        self.critic_legend = pg.LabelItem(justify="left")
        self.canvas.addItem(self.critic_legend, row=2, col=1)
        self.grid = GridLayers(self.plot, self.critic_legend)
        self.distance_legend = pg.LabelItem(justify="left")
        self.canvas.addItem(self.distance_legend, row=1, col=1)
        self.distance = DistanceLayer(self.plot, self.distance_legend)
        self.posterior = PosteriorOverlay(self.plot)
        # where z ~ N(0, I) actually lands: |z| is close to sqrt(d), so a plane through 0 meets draws on a ring
        self.typical = pg.PlotCurveItem(pen=pg.mkPen(ink, width=1.5, style=pg.QtCore.Qt.PenStyle.DashLine))
        self.typical.setZValue(5)
        self.typical.setVisible(False)
        self.plot.addItem(self.typical)
        # a seed plane's three noise seeds, at (0, 0), (1, 0) and (0, 1): what the axes are measured from
        self.seed_marks = pg.ScatterPlotItem(size=10, symbol="d", pen=pg.mkPen(ink, width=1.5), brush=None)
        self.seed_labels = [pg.TextItem(f"seed {k + 1}", color=ink, anchor=(1.15, -0.1)) for k in range(3)]
        for item in (self.seed_marks, *self.seed_labels):
            item.setZValue(5)
            item.setVisible(False)
            self.plot.addItem(item)
        self.probes = [Probe(i, (0.0, 0.0)) for i in range(N_PROBES)]
        for probe in self.probes:
            probe.target.setVisible(False)
            self.plot.addItem(probe.target)
            probe.moved.connect(self._on_probe_moved)
            probe.released.connect(self._on_probe_released)

        self.status = QLabel("")
        self.status.setObjectName("mapStatus")
        # one line that never changes height: a resize would move an aspect-locked view under a dragged probe
        self.status.setWordWrap(False)
        self.status.setFixedHeight(self.status.sizeHint().height())
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.side = MapSidebar(N_PROBES)
        left = QVBoxLayout()
        left.setContentsMargins(0, 0, 0, 0)
        left.addWidget(self.canvas, 1)
        left.addWidget(self.status)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(left, 1)
        layout.addWidget(self.side)

        self._settle = QTimer(self)
        self._settle.setSingleShot(True)
        self._settle.setInterval(250)
        self._settle.timeout.connect(self._refresh_layers)
        self.vb.sigRangeChanged.connect(lambda *_: self._settle.start())
        attach_reset(self.canvas, self.plot, self._reset_view)
        scene = self.canvas.scene()
        scene.sigMouseMoved.connect(self._on_mouse_moved)
        scene.sigMouseClicked.connect(self._on_mouse_clicked)
        for name, box in self.side.layer_boxes.items():
            box.toggled.connect(lambda on, n=name: self.set_layer(n, on))
        self.side.reroll_button.clicked.connect(self.reroll)
        self.side.recentre_button.clicked.connect(self.recentre)
        self.side.sample_button.clicked.connect(self.draw_samples)
        self.side.keyframe_button.clicked.connect(self.use_pinned_as_keyframe)
        self.side.probe_keyframe_button.clicked.connect(self.use_probes_as_keyframes)
        self.side.picker.changed.connect(self._condition_changed)
        self.side.colour_by.currentIndexChanged.connect(lambda _i: self._colour_dots())
        # the interpolation's path, drawn where it runs (projected onto the plane when d > 2)
        self.path_curve = pg.PlotCurveItem(pen=pg.mkPen(ink, width=2))
        self.path_dots = pg.ScatterPlotItem(size=6, pen=pg.mkPen(ink), brush=pg.mkBrush(ink))
        for item in (self.path_curve, self.path_dots):
            item.setZValue(6)
            item.setVisible(False)
            self.plot.addItem(item)
        self._path: tuple[str, np.ndarray] | None = None
        state.path_changed.connect(self._on_path)
        # the Directions tab's picture, its sliders' directions as arrows, and the moved code
        self.arrows = ArrowsOverlay(self.plot)
        self._arrows: tuple[str, object] | None = None
        state.arrows_changed.connect(self._on_arrows)
        state.model_changed.connect(self._on_model)
        self._on_model(state.model)

    # -- what the user sees as panels --------------------------------------------------------------------------
    @property
    def probe_panels(self):
        return self.side.probe_panels

    @property
    def is_diffusion(self) -> bool:
        return self.info is not None and self.info.can(DENOISE)

    @property
    def has_encoder(self) -> bool:
        return self.info is not None and self.info.can(ENCODE)

    def _classes(self) -> tuple[str, ...]:
        return tuple(self.info.classes) if self.info is not None else ()

    def say(self, text: str) -> None:
        self.status.setText(text)

    # -- a new model -------------------------------------------------------------------------------------------
    def _on_model(self, info) -> None:
        self.channel.invalidate(cancel=True)
        self.info, self.plane, self.enc, self.uv, self.pinned, self.hovered = info, None, None, None, None, None
        self.recentred_on, self._restoring = None, None
        self.target = info.path if info is not None else None
        self._seed = 0
        self._layer_asked.clear()
        self.scatter.clear()
        self.grid.clear()
        self.distance.clear()
        self.posterior.set_posterior(None, None)
        self.posterior.redraw(None)
        self._show_pinned()
        self.side.reset()
        for probe, panel in zip(self.probes, self.probe_panels):
            probe.target.setVisible(False)
        if info is None:
            self.say("Open a model to see its latent space.")
            return
        if info.latent_dim < 2:
            self.say(f"A {info.latent_dim}-D latent has no plane to map.")
            return
        caps = info.capabilities
        self.side.configure(info)                  # (a class-conditional model's class picker with it)
        if ENCODE not in caps and self.side.layer_boxes["regions"].isChecked():
            self.scatter.show_legend(self._classes())      # the regions layer stays on: so does its legend
        if ENCODE in caps:
            self.say(f"Encoding the {info.dataset} test set…")
            self.caption_changed.emit(MAP.caption)
            self.submit(EncodeTestSet(info.dataset, self.test_limit), lambda r: self._on_encoded(r.payload))
        else:
            self.caption_changed.emit(
                "The summary space of a model without an encoder: drag the probes through its noise, "
                "where every point is a picture the model can draw." if DENOISE not in caps else
                "A diffusion model's noise space: every point is a start noise x_T; let go of a probe to "
                f"denoise it ({DDIM_STEPS} DDIM steps).")
            self._set_plane(self._noise_plane(), reset_view=True)
            self.say("Drag a probe to decode any point of this plane; the layers decode the whole visible part."
                      if not self.is_diffusion else "Drag a probe and let go: it is denoised from that x_T.")

    def _noise_plane(self) -> Plane:
        if self.is_diffusion:
            return seeds_plane(*noise_seeds(math.prod(self.info.image_shape), self._seed))
        return random_plane(self.info.latent_dim, self._seed)

    def _on_encoded(self, enc: dict) -> None:
        if "missing" in enc:                       # a folder it was trained on has gone: a plane, no dots
            self.side.describe_data(None, self.info.dataset)
            self._set_plane(random_plane(self.info.latent_dim, self._seed), reset_view=True)
            self.say(enc["missing"])
            return
        self.enc = enc
        codes = enc["codes"]
        self.side.describe_data(enc, self.info.dataset)
        self._colour_dots()
        if codes.shape[1] == 2:
            plane, frac = identity_plane(), None
        else:
            plane, frac = pca_plane(codes)
        self.plane_frac = frac
        self.side.describe_encoder(enc["logvar"] is not None, codes.shape[1])
        self._set_plane(plane, reset_view=True)
        self.say(f"{len(codes):,} test images encoded; hover a dot to see it, click to pin it.")

    def dot_colouring(self) -> tuple[np.ndarray | None, tuple[str, ...], tuple]:
        """What colours the dots: the factor picked in the sidebar (a data set with known factors), else the data
        set's labels, else nothing (None: unlabelled pictures); with the names of its values, and their own
        colours when the factor is a colour (red dots for red shapes), else () for the class palette."""
        enc = self.enc
        if enc is None:
            return None, (), ()
        names = tuple(enc.get("factor_names", ()))
        factor = self.side.colour_by.currentData()
        if enc.get("factors") is not None and factor in names:
            k = names.index(factor)
            rgb = enc.get("factor_rgb", ())
            return enc["factors"][:, k], tuple(enc["factor_values"][k]), tuple(rgb[k]) if k < len(rgb) else ()
        return enc["labels"], self._classes(), ()

    def _colour_dots(self) -> None:
        """Colour the dots as `dot_colouring` says; they keep their places, the pinned ring its dot."""
        if self.enc is None:
            return
        values, names, rgb = self.dot_colouring()
        self.scatter.build(values, names, n=len(self.enc["codes"]), rgb=rgb)
        self.scatter.mark_pin(self.pinned)

    # -- the plane ---------------------------------------------------------------------------------------------
    def _set_plane(self, plane: Plane, reset_view: bool = False, shift: np.ndarray | None = None) -> None:
        self.plane = plane
        self._version += 1
        self.plot.setLabel("bottom", plane.axes[0])
        self.plot.setLabel("left", plane.axes[1])
        self.side.plane_note.setText(describe(plane, self.plane_frac, self.info.title, DDIM_STEPS))
        self.vb.setAspectLocked(plane.kind != "seeds", ratio=1.0)
        if self.enc is not None:
            self.uv = plane.project(self.enc["codes"])
            self.scatter.place(self.uv)
        self._show_pinned()
        self.posterior.redraw(plane)
        self._draw_landmarks(plane)
        self._draw_path()
        self._draw_arrows()
        if reset_view:
            self._reset_view()
            starts = initial_positions(plane.kind, self.uv, self.dot_colouring()[0], radius=math.sqrt(plane.dim))
        else:
            starts = [tuple(p.uv - (shift if shift is not None else 0.0)) for p in self.probes]
        for probe, uv in zip(self.probes, starts):
            probe.target.blockSignals(True)
            probe.target.setPos(float(uv[0]), float(uv[1]))
            probe.target.blockSignals(False)
            probe.target.setVisible(True)
        if shift is not None:
            limit_zoom(self.vb, *default_range(plane, self.uv))     # the data moved with the plane: so do limits
            (x0, x1), (y0, y1) = self.vb.viewRange()
            dx, dy = float(shift[0]), float(shift[1])
            self.vb.setRange(xRange=(x0 - dx, x1 - dx), yRange=(y0 - dy, y1 - dy), padding=0.0)
        self._waiting_ready = set(range(N_PROBES))
        for i in range(N_PROBES):
            self._decode_probe(i)
        self._refresh_layers()
        if self._restoring is not None:
            self._apply_session()

    def _draw_landmarks(self, plane: Plane) -> None:
        """The typical ring |z| = sqrt(d) on a plane through 0; the three seeds on a seed plane."""
        ring = plane.kind == "random"
        if ring:
            pts = ellipse(np.zeros(2), np.eye(2), math.sqrt(plane.dim), n=180)
            self.typical.setData(pts[:, 0], pts[:, 1])
        self.typical.setVisible(ring)
        seeds = plane.kind == "seeds"
        self.seed_marks.setData([0.0, 1.0, 0.0], [0.0, 0.0, 1.0])
        for item, (u, v) in zip(self.seed_labels, ((0.0, 0.0), (1.0, 0.0), (0.0, 1.0))):
            item.setPos(u, v)
        for item in (self.seed_marks, *self.seed_labels):
            item.setVisible(seeds)

    def _reset_view(self) -> None:
        """The plane's opening view (Home, a double-click on empty space and the "A" button come back here)."""
        if self.plane is None:
            return
        x_range, y_range = default_range(self.plane, self.uv)
        limit_zoom(self.vb, x_range, y_range)
        self.vb.setRange(xRange=x_range, yRange=y_range, padding=0.0)

    def reroll(self) -> None:
        """A new random plane (GAN) or new noise seeds (diffusion): the same probes, somewhere else."""
        if self.info is None or self.has_encoder:
            return
        self._seed += 1
        self._set_plane(self._noise_plane())

    def recentre(self) -> None:
        """Move the plane to pass through the pinned image's code; its dot then sits at (0, 0), exactly on it."""
        if self.plane is None or self.pinned is None or self.enc is None:
            return
        z = self.enc["codes"][self.pinned]
        shift = self.plane.project(z)
        self.recentred_on = self.pinned
        self._set_plane(self.plane.recentred(z), shift=shift)
        self.say("The plane now passes through the pinned image's code: (0, 0) decodes to its reconstruction.")

    # -- sessions ----------------------------------------------------------------------------------------------
    def session_state(self) -> MapSession:
        """The probes where they are, the pin, the plane's seed or re-centring, the layers, the dots' colouring
        and the class asked; a session still waiting for the plane is kept as it came."""
        if self._restoring is not None:
            return self._restoring
        picker = self.side.picker
        drawn = self.plane is not None
        return MapSession(
            probes=tuple(tuple(float(x) for x in p.uv) for p in self.probes) if drawn else (),
            seed=self._seed, recentred_on=self.recentred_on, pinned=self.pinned,
            layers=tuple(name for name, box in self.side.layer_boxes.items() if box.isChecked()),
            colour_by=self.side.colour_by.currentData() if self.side.colour_by.count() else None,
            class_index=picker.class_index if picker.conditional else None,
            guidance=picker.scale if picker.conditional else None,
            view_range=tuple(tuple(float(v) for v in r) for r in self.vb.viewRange()) if drawn else None)

    def restore_session(self, state) -> list[str]:
        """Put the probes, pin, plane and layers back: now if the plane is drawn, else once it is."""
        if not isinstance(state, MapSession) or self.info is None or self.info.latent_dim < 2:
            return [] if not isinstance(state, MapSession) else ["The map has no plane to put the probes on."]
        problems = []
        if state.probes and len(state.probes) != N_PROBES:
            problems.append(f"The session has {len(state.probes)} map probes and the map has {N_PROBES}; "
                            "the first are placed.")
        names = self.side.picker.names
        if state.class_index is not None and state.class_index >= len(names):
            problems.append(f"The map's class {state.class_index} is not one this model knows; it asks for any class.")
        self._restoring = state
        if self.plane is not None:
            self._apply_session()
        return problems

    def _apply_session(self) -> None:
        s, self._restoring = self._restoring, None
        problems: list[str] = []
        picker = self.side.picker
        if picker.conditional:
            picker.blockSignals(True)             # one redraw below, not one per control
            picker.set_class(s.class_index if s.class_index is not None and s.class_index < len(picker.names)
                             else None)
            if s.guidance is not None:
                picker.set_guidance(s.guidance)
            picker.blockSignals(False)
        if s.colour_by is not None and self.side.colour_by.findData(s.colour_by) >= 0:
            self.side.colour_by.setCurrentIndex(self.side.colour_by.findData(s.colour_by))
        if not self.has_encoder and s.seed != self._seed:
            self._seed = s.seed
            self._set_plane(self._noise_plane(), reset_view=True)
        n = 0 if self.enc is None else len(self.enc["codes"])
        if s.recentred_on is not None:
            if s.recentred_on < n and self.plane is not None and self.plane.dim > 2:
                z = self.enc["codes"][s.recentred_on]
                shift = self.plane.project(z)
                self.recentred_on = s.recentred_on
                self._set_plane(self.plane.recentred(z), shift=shift)
            else:
                problems.append(f"The map's plane passed through test image #{s.recentred_on}, which is not here.")
        if s.pinned is not None:
            if s.pinned < n:
                self.pin(s.pinned)
            else:
                problems.append(f"The map's pinned test image #{s.pinned} is not here.")
        for name in LAYERS:
            box = self.side.layer_boxes[name]
            wanted = name in s.layers
            if wanted and not box.isEnabled():
                problems.append(f"The map's {name} layer is not available for this model.")
            elif box.isChecked() != wanted:
                self.set_layer(name, wanted)
        for probe, (u, v) in zip(self.probes, s.probes):
            probe.target.blockSignals(True)
            probe.target.setPos(u, v)
            probe.target.blockSignals(False)
        if s.view_range is not None:
            self.vb.setRange(xRange=s.view_range[0], yRange=s.view_range[1], padding=0.0)
        self._waiting_ready = set(range(N_PROBES))
        for i in range(N_PROBES):
            self.channel.invalidate(f"probe-{i}")      # a picture of where the probe was must not land now
            self._decode_probe(i)
        self._refresh_layers()
        self.say(" ".join(problems) if problems else "The session's probes, pin and layers are back.")

    # -- the scatter, hover and pin ----------------------------------------------------------------------------
    @property
    def class_items(self) -> list[pg.ScatterPlotItem]:
        return self.scatter.items

    @property
    def legend_names(self) -> list[str]:
        return [label.text for _, label in self.legend.items]

    def nearest_dot(self, u: float, v: float) -> int | None:
        """The test image whose dot is within a few screen pixels of the map point (u, v), if any."""
        return self.scatter.nearest(u, v, self.vb.viewPixelSize())

    def _on_mouse_moved(self, scene_pos) -> None:
        if self.uv is None or not self.vb.sceneBoundingRect().contains(scene_pos):
            return
        p = self.vb.mapSceneToView(scene_pos)
        self.hover(self.nearest_dot(p.x(), p.y()))

    def _on_mouse_clicked(self, ev) -> None:
        if self.uv is None or ev.button() != pg.QtCore.Qt.MouseButton.LeftButton:
            return
        pos = ev.scenePos()
        if any(p.target.sceneBoundingRect().contains(pos) for p in self.probes):
            return
        p = self.vb.mapSceneToView(pos)
        i = self.nearest_dot(p.x(), p.y())
        if i is not None:
            self.pin(i)

    def _describe(self, i: int) -> str:
        values, names, _ = self.dot_colouring()
        if values is None:
            return f"#{i}"
        label = int(values[i])
        name = names[label] if label < len(names) else str(label)
        return f"{name} #{i}"

    def hover(self, i: int | None) -> None:
        """Show test image i under the cursor (None: nothing under it)."""
        if i == self.hovered:
            return
        self.hovered = i
        self.scatter.mark_hover(i)
        if i is None:
            return
        self.side.hover_panel.set_image(self.enc["images"][i].astype(np.float32) / 255.0)
        self.side.hover_panel.set_caption(self._describe(i))

    def pin(self, i: int | None) -> None:
        """Pin test image i: its picture stays beside the map and, for a VAE, its Gaussian is drawn."""
        self.pinned = i
        self.side.sample_strip.set_image(None)
        self.side.sample_strip.setVisible(False)
        if i is not None and self.enc is not None and self.enc["logvar"] is not None:
            self.posterior.set_posterior(self.enc["codes"][i], self.enc["logvar"][i])
        else:
            self.posterior.set_posterior(None, None)
        self.posterior.redraw(self.plane)
        self._show_pinned()
        if i is not None:
            self.state.test_image_pinned.emit(int(i))    # the diffusion tab noises the same image

    def _show_pinned(self) -> None:
        i = self.pinned
        has = i is not None and self.enc is not None
        panel = self.side.pinned_panel
        self.scatter.mark_pin(i if has else None)
        if has:
            panel.set_image(self.enc["images"][i].astype(np.float32) / 255.0)
            panel.set_caption(self._describe(i))
        else:
            panel.set_image(None)
            panel.set_caption("click a dot")
        self.side.recentre_button.setEnabled(has and self.plane is not None and self.plane.dim > 2)
        self.side.keyframe_button.setEnabled(has)
        self.side.sample_button.setEnabled(has and self.enc["logvar"] is not None)

    # -- to and from the interpolation -------------------------------------------------------------------------
    def use_pinned_as_keyframe(self) -> None:
        """The pinned test image joins the Interpolate tab's keyframes."""
        if self.pinned is not None and self.enc is not None:
            image = self.enc["images"][self.pinned].astype(np.float32) / 255.0
            self.state.keyframe_requested.emit(image, f"map: {self._describe(self.pinned)}")

    def use_probes_as_keyframes(self) -> None:
        """Both probes' decoded pictures join the keyframes: a walk from one probe to the other."""
        for i, panel in enumerate(self.probe_panels):
            if panel.image is not None:
                self.state.keyframe_requested.emit(np.asarray(panel.image, np.float32), f"map: probe {i + 1}")

    def _on_path(self, model_path: str, z) -> None:
        self._path = None if z is None else (model_path, np.asarray(z, np.float32))
        self._draw_path()

    def _draw_path(self) -> None:
        """The interpolation's path over the map when it runs through this model's latent space."""
        shown = (self._path is not None and self.info is not None and self.plane is not None
                 and self._path[0] == self.info.path and self._path[1].shape[-1] == self.plane.dim)
        if shown:
            uv = self.plane.project(self._path[1])
            self.path_curve.setData(uv[:, 0], uv[:, 1])
            self.path_dots.setData(uv[:, 0], uv[:, 1])
        for item in (self.path_curve, self.path_dots):
            item.setVisible(shown)

    def _on_arrows(self, model_path: str, arrows) -> None:
        self._arrows = None if arrows is None else (model_path, arrows)
        self._draw_arrows()

    def _draw_arrows(self) -> None:
        """The Directions tab's arrows over the map when they are in this model's latent space."""
        here = self._arrows is not None and self.info is not None and self._arrows[0] == self.info.path
        self.arrows.draw(self._arrows[1] if here else None, self.plane)

    def draw_samples(self) -> None:
        """z = mu + sigma * eps for the pinned image, decoded: the reparameterisation trick made visible."""
        if self.pinned is None or self.enc is None or self.enc["logvar"] is None:
            return
        self._sample_seed += 1
        self.submit(SamplePosterior(self.pinned, N_POSTERIOR_SAMPLES, self._sample_seed, self.info.dataset,
                                     self.test_limit), lambda r: self._show_samples(r.payload))

    # -- probes ------------------------------------------------------------------------------------------------
    def _decode_probe(self, i: int) -> None:
        if self.plane is None:
            return
        z = self.plane.to_latent(self.probes[i].uv)
        job = (DenoisePoint(f"probe-{i}", z, DDIM_STEPS, **self._condition()) if self.is_diffusion
               else DecodeProbe(f"probe-{i}", z))
        self.submit(job, partial(self._show_probe, i))

    def _condition(self) -> dict:
        """The class and guidance scale a class-conditional model's jobs carry (none for any other model)."""
        picker = self.side.picker
        return {"class_index": picker.class_index, "guidance": picker.guidance} if picker.conditional else {}

    def _condition_changed(self) -> None:
        """Another class or scale: every probe and the visible layers are drawn again, the plane kept."""
        if self.plane is None:
            return
        self._version += 1                       # layers asked for the old class are not drawn
        self._layer_asked.clear()
        for i in range(N_PROBES):
            self._decode_probe(i)
        self._refresh_layers()
        self.say(f"Probes and layers ask for {self.side.picker.text()}.")

    def _on_probe_moved(self, i: int, _uv) -> None:
        if self.is_diffusion:
            self.probe_panels[i].panel.set_caption("let go to denoise")
        else:
            self._decode_probe(i)

    def _on_probe_released(self, i: int, _uv) -> None:
        if self.is_diffusion:
            self._decode_probe(i)

    def _show_probe(self, i: int, result: Result) -> None:
        p = result.payload
        panel = self.probe_panels[i]
        if not p.labelled:
            panel.show_pixels(p.images[0])           # pixels first; the verdicts follow in the next item
        else:
            reason = self.info.classifier_reason if self.info is not None else ""
            panel.show_result(p.images[0], self._classes(), p.labels, p.confidences, p.critic,
                              reason or "no classifier")
        panel.show_cost(p.ms, p.step, p.steps)
        if p.step is not None:
            panel.show_progress(p.step, p.steps)
            if not result.final and p.step < p.steps:
                panel.panel.set_caption(f"denoising… step {p.step}/{p.steps}")
        panel.job_id = result.job_id
        self.probe_shown.emit(i, result.job_id)
        if p.labels is not None:
            self.probe_labelled.emit(i, result.job_id)
        if result.final and i in self._waiting_ready:
            self._waiting_ready.discard(i)
            if not self._waiting_ready:
                self.ready.emit()

    # -- layers ------------------------------------------------------------------------------------------------
    def set_layer(self, name: str, on: bool) -> None:
        """Turn a layer on or off ("grid", "regions", "critic", "distance"); the checkbox follows."""
        box = self.side.layer_boxes[name]
        if box.isChecked() != on:
            box.setChecked(on)              # comes back here through `toggled`
            return
        if name == "grid":
            self.grid.show_thumbs = on
            self.scatter.dim(on)                    # the pictures are the point now; the dots step back
        elif name == "regions":
            self.grid.show_regions = on
            if not self.has_encoder:                # no dots, so no legend yet: the regions still need one
                self.scatter.show_legend(self._classes() if on else ())
        elif name == "critic":
            self.grid.show_critic = on
        else:
            self.distance.show = on
        self.grid.refresh()
        self.distance.refresh()
        self._refresh_layers()

    def _refresh_layers(self) -> None:
        if self.plane is None:
            return
        region = Region.of(self.vb.viewRange())
        wanted = (region, self._version)
        if self.grid.wanted and self._layer_asked.get("grid") != wanted:
            self._layer_asked["grid"] = wanted
            job_id = self.submit(DecodePoints("map-grid", self.grid.latents(self.plane, region),
                                              **self._condition()), partial(self._draw_layer, "grid"))
            self._layer_requests[job_id] = wanted
        if self.distance.wanted and self.enc is not None and self._layer_asked.get("distance") != wanted:
            self._layer_asked["distance"] = wanted
            job_id = self.submit(DistanceToData(self.distance.latents(self.plane, region), self.info.dataset,
                                                 self.test_limit), partial(self._draw_layer, "distance"))
            self._layer_requests[job_id] = wanted

    def _draw_layer(self, name: str, result: Result) -> None:
        region, version = self._layer_requests.pop(result.job_id, (None, -1))
        if region is None or version != self._version:
            return
        (self.grid if name == "grid" else self.distance).draw(result.payload, region)
        self.layer_drawn.emit(name)

    # -- engine answers ----------------------------------------------------------------------------------------
    def _show_samples(self, p: dict) -> None:
        if p["index"] != self.pinned:
            return
        self.posterior.set_samples(p["z"])
        self.posterior.redraw(self.plane)
        self.side.sample_strip.setVisible(True)
        self.side.sample_strip.set_image(tile(p["images"], columns=4))
        self.side.sample_strip.set_caption(f"{len(p['z'])} draws z = μ + σ·ε, marked × on the map")
        # once the strip has its place in the layout, scroll the column so it is in sight
        QTimer.singleShot(0, self.side, lambda: self.side.ensureWidgetVisible(self.side.sample_strip))
        self.samples_shown.emit()
