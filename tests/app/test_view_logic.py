"""What the views keep that is not widgets, driven without a window: the one class palette, the diffusion
player's clock and branches, and the interpolation's keyframes and path."""
from __future__ import annotations

import types

import numpy as np
import pytest

from explorer.views.diffusion.decided import PALETTE, strip_rgba
from explorer.views.diffusion.frames import KeptFrame
from explorer.views.diffusion.player import AT_END, MOVED, BranchError, Player
from explorer.views.interpolate.path import MAX_KEYFRAMES, Keyframe, KeyframePath
from explorer.views.interpolate.paths import LERP, SLERP
from explorer.views.widgets.palette import CLASS_COLOURS, class_colour, class_rgb, rgb_unit, rgba_table


def test_a_class_has_one_colour_in_every_tab():
    table = rgba_table()
    for k in range(len(CLASS_COLOURS)):
        r, g, b = class_rgb(k)
        assert class_colour(k) == f"#{r:02x}{g:02x}{b:02x}"                 # the map's dots
        assert tuple(table[k, :3]) == (r, g, b)                             # the map's regions layer
        np.testing.assert_allclose(PALETTE[k] * 255, (r, g, b), atol=1e-3)  # the diffusion view's strip
    assert class_rgb(10) == class_rgb(0)                                    # class k takes colour k mod 10
    rgba = strip_rgba(np.array([[0, -1]]), np.array([[1.0, 1.0]]))
    np.testing.assert_allclose(rgba[0, 0, :3], rgb_unit()[0])
    assert rgba[0, 1, 3] == 0.0                                             # not classified yet: transparent


def _frame(i: int, t: int) -> KeptFrame:
    raw = np.zeros((2, 1, 4, 4), np.float32)
    return KeptFrame(i, t, raw, np.zeros((2, 4, 4), np.float16), np.zeros((2, 4, 4), np.float16), 1.0)


def test_the_player_moves_by_whole_frames_and_stops_at_the_end_of_a_finished_run():
    player = Player()
    run = player.new_run(2, "ddpm", None, 1.0, 0)
    for i in range(4):
        run.add(_frame(i, 40 - 10 * i), 4)
    player.play(True)
    assert player.tick(0.5) is None and player.pos == 0       # half a frame: nothing yet
    assert player.tick(0.5) == MOVED and player.pos == 1
    assert player.tick(5.0) == MOVED and player.pos == 3      # clipped to the frames there are
    assert player.tick(1.0) is None                          # live: waits for the next frame
    run.done = True
    assert player.tick(1.0) == AT_END
    player.play(True)
    assert player.pos == 0                                   # at the end: play from the start again
    assert player.seek(99) and player.pos == 3


def test_a_branch_starts_from_a_computed_frame_and_shares_its_parents_frames():
    player = Player()
    run = player.new_run(2, "ddpm", None, 1.0, 0)
    for i in range(3):
        run.add(_frame(i, 30 - 10 * i), 5)
    branch = player.branch(1, seed=7)
    assert branch.start == 1 and branch.seed == 7 and branch.frames == run.frames[:1]
    assert player.start_t(branch) == 20 and len(player.tracks) == 2
    with pytest.raises(BranchError, match="not been computed"):
        player.branch(4, seed=8)
    assert player.pick(1) and player.track is branch and not player.pick(5)
    assert player.compared() is None                         # nothing finished yet
    deterministic = Player()
    d = deterministic.new_run(2, "ddim", 10, 0.0, 0)
    d.add(_frame(0, 9), 10)
    with pytest.raises(BranchError, match="η = 0"):
        deterministic.branch(0, seed=1)


def test_the_path_kind_follows_the_codes_until_the_user_chooses():
    walk = KeyframePath()
    image = np.zeros((4, 4), np.float32)
    while not walk.full:
        assert walk.add(Keyframe(image, f"#{len(walk.keyframes)} T-shirt"))
    assert len(walk.keyframes) == MAX_KEYFRAMES and not walk.add(Keyframe(image, "one too many"))
    while walk.remove_last():
        pass
    assert len(walk.keyframes) == 2 and walk.point(0.5) is None
    z = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    walk.set_codes(types.SimpleNamespace(z=z, gaussian=False))
    assert walk.kind == LERP
    np.testing.assert_allclose(walk.point(0.5), [0.5, 0.5])
    assert walk.frames(3).shape == (3, 2)
    assert walk.choose_kind(SLERP) and not walk.choose_kind(SLERP)
    walk.set_codes(types.SimpleNamespace(z=z, gaussian=False))
    walk.reset_kind()
    assert walk.kind == SLERP                                # the user's choice stays
