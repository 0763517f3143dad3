"""The pieces the views share: tiles that come apart where they were put, a grid that says which image was
clicked, and exports that are atomic, say why they failed, and hold what was shown."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPointF, Qt

from explorer.views.widgets.export import ExportError, save_gif, save_png
from explorer.views.widgets.image_grid import ImageGrid
from explorer.views.widgets.tiles import tile, tile_at, tile_origin


def test_tiles_are_where_tile_at_finds_them():
    images = np.random.default_rng(0).random((7, 5, 4)).astype(np.float32)
    picture = tile(images, columns=3, gap=2)
    assert picture.shape == (3 * 5 + 2 * 2, 3 * 4 + 2 * 2)
    for i in range(7):
        x, y = tile_origin(i, (5, 4), 3)
        np.testing.assert_array_equal(picture[y:y + 5, x:x + 4], images[i])
        assert tile_at(x + 1, y + 1, 7, (5, 4), 3) == i
    assert tile_at(4.5, 0, 7, (5, 4), 3) is None                  # the gap between two tiles
    assert tile_at(2 * 6 + 1, 2 * 7 + 1, 7, (5, 4), 3) is None   # past the last image


def test_the_grid_says_which_image_was_clicked(qtbot):
    grid = ImageGrid(columns=4)
    qtbot.addWidget(grid)
    grid.resize(600, 400)
    grid.show()
    grid.set_images(np.random.default_rng(1).random((6, 28, 28)).astype(np.float32))
    grid.set_captions([f"image {i}" for i in range(6)])
    qtbot.wait(50)
    assert grid.captions == [f"image {i}" for i in range(6)]
    x, y = grid.tile_origin(5)
    scene = grid.box.mapViewToScene(QPointF(x + 14, y + 14))
    with qtbot.waitSignal(grid.clicked, timeout=2000) as hit:
        qtbot.mouseClick(grid.viewport(), Qt.MouseButton.LeftButton, pos=grid.mapFromScene(scene))
    assert hit.args == [5]


def test_png_and_gif_hold_what_was_shown(tmp_path):
    frames = [np.full((28, 28), v, np.float32) for v in (0.0, 0.5, 1.0)]
    png = save_png(frames[1], tmp_path / "one.png", scale=2)
    assert Image.open(png).size == (56, 56)
    gif = save_gif(frames, tmp_path / "walk.gif", scale=1, bounce=True)
    with Image.open(gif) as im:
        assert im.n_frames == 4 and im.size == (28, 28) and im.info.get("loop") == 0   # 0 .5 1 .5, looping
    assert not list(tmp_path.glob(".*.tmp"))                   # nothing half-written left behind


def test_an_unwritable_destination_says_why_and_keeps_the_old_file(tmp_path):
    target = tmp_path / "keep.png"
    save_png(np.zeros((4, 4), np.float32), target)
    before = target.read_bytes()
    with pytest.raises(ExportError, match="cannot write"):
        save_png(np.ones((4, 4), np.float32), target / "inside-a-file.png")     # a file where a folder should be
    with pytest.raises(ExportError, match="no frames"):
        save_gif([], tmp_path / "empty.gif")
    assert target.read_bytes() == before
