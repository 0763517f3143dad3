"""A run resumed at frame k (a branch) walks the same steps from that frame's x_t: with the same noise it is the
parent run's tail, frame for frame; outside the run it is refused rather than silently empty."""
from __future__ import annotations

import pytest
import torch

from models.diffusion.samplers import ddim_frames, ddpm_frames
from models.diffusion.schedule import linear_schedule


def stand_in_eps(x, t):
    """A network you can read: eps is a fixed fraction of x_t, shifted by the step."""
    return 0.3 * x + 1e-3 * t.float()[:, None, None, None]


@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
def test_resuming_at_frame_k_with_the_same_noise_repeats_the_parents_tail(sampler):
    sched = linear_schedule(40)
    x_T = torch.randn(2, 1, 4, 4, generator=torch.Generator().manual_seed(0))

    def run(x, seed, start=0):
        gen = torch.Generator().manual_seed(seed)
        if sampler == "ddpm":
            return list(ddpm_frames(sched, stand_in_eps, x, gen, steps=10, start=start))
        return list(ddim_frames(sched, stand_in_eps, x, 10, eta=1.0, generator=gen, start=start))

    parent = run(x_T, 1)
    # noise drawn for frames 0..k-1 comes first from the parent's generator: skip it, then resume at k
    k = 4
    gen = torch.Generator().manual_seed(1)
    for _ in range(k):
        torch.randn(x_T.shape, generator=gen)
    resumed = list(ddpm_frames(sched, stand_in_eps, parent[k].x_t, gen, steps=10, start=k)) if sampler == "ddpm" \
        else list(ddim_frames(sched, stand_in_eps, parent[k].x_t, 10, eta=1.0, generator=gen, start=k))
    assert [f.index for f in resumed] == list(range(k, 10))
    assert [f.t for f in resumed] == [f.t for f in parent[k:]]
    for a, b in zip(resumed, parent[k:]):
        torch.testing.assert_close(a.x_t, b.x_t)
        torch.testing.assert_close(a.x0, b.x0)
    other = run(parent[k].x_t, 7, start=k)                       # a branch: other noise, another ending
    torch.testing.assert_close(other[0].x0, parent[k].x0)        # frame k itself is shared
    assert not torch.allclose(other[-1].x0, parent[-1].x0)


def test_a_start_outside_the_run_is_refused():
    sched = linear_schedule(20)
    with pytest.raises(ValueError, match="no frame 5"):
        next(ddim_frames(sched, stand_in_eps, torch.zeros(1, 1, 4, 4), 5, start=5))
