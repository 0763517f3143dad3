"""The latent map's math and engine jobs, without Qt: planes invert exactly, the distance field vanishes on the
data, posterior samples follow z = mu + sigma * eps, and decode/encode answer in numpy with the right shapes."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from explorer.engine.errors import MissingCapabilityError
from explorer.engine.job import EngineContext
from explorer.engine.jobs.common import DecodePoints, DecodeProbe
from explorer.engine.jobs.map import (DistanceToData, EncodeTestSet, SamplePosterior, encode_test_set, latent_spread,
                                      nearest_distance)
from explorer.views.widgets import plane as pl
from models.registry import build

LIMIT = 300


def _ctx(family: str, d: int, **extra) -> EngineContext:
    torch.manual_seed(0)
    cfg = {"latent_dim": d, "hidden": (32,)}
    cfg.update(extra)
    model = build(family, cfg).eval()
    return EngineContext(device=torch.device("cpu"), model=model, model_path=f"/tmp/{family}-{d}.safetensors")


# ---------------------------------------------------------------- plane math (numpy only)

def test_pca_plane_inverse_is_exact_inside_the_plane():
    rng = np.random.default_rng(1)
    codes = rng.standard_normal((500, 16)) * np.linspace(3, 0.1, 16) + 5.0
    plane, frac = pl.pca_plane(codes)
    uv = rng.uniform(-4, 4, size=(50, 2)).astype(np.float32)
    np.testing.assert_allclose(plane.project(plane.to_latent(uv)), uv, atol=1e-4)
    # (0, 0) is the data mean, and the axes carry most of the variance, the first more than the second
    np.testing.assert_allclose(plane.to_latent(np.zeros(2)), codes.mean(axis=0), atol=1e-4)
    assert frac[0] > frac[1] > 0 and frac.sum() < 1


def test_projection_is_the_nearest_point_of_the_plane():
    rng = np.random.default_rng(2)
    plane, _ = pl.pca_plane(rng.standard_normal((200, 8)))
    z = rng.standard_normal((20, 8)).astype(np.float32)
    residual = z - plane.to_latent(plane.project(z))
    # what is left over is orthogonal to both directions of the plane
    np.testing.assert_allclose(residual @ plane.basis.T, 0, atol=1e-4)


def test_recentred_plane_passes_through_the_pinned_code_with_the_same_directions():
    rng = np.random.default_rng(3)
    plane, _ = pl.pca_plane(rng.standard_normal((200, 8)))
    z = rng.standard_normal(8).astype(np.float32)
    moved = plane.recentred(z)
    np.testing.assert_allclose(moved.to_latent(np.zeros(2)), z, atol=1e-6)
    np.testing.assert_allclose(moved.project(z), [0, 0], atol=1e-5)
    np.testing.assert_array_equal(moved.basis, plane.basis)


def test_random_plane_is_orthonormal_and_rerolls():
    a, b = pl.random_plane(32, seed=0), pl.random_plane(32, seed=1)
    np.testing.assert_allclose(a.basis @ a.basis.T, np.eye(2), atol=1e-5)
    np.testing.assert_array_equal(a.origin, 0)
    assert not np.allclose(a.basis, b.basis)
    np.testing.assert_array_equal(pl.random_plane(32, seed=0).basis, a.basis)   # same seed, same plane


def test_seeds_plane_hits_each_seed():
    x1, x2, x3 = pl.noise_seeds(784, seed=5)
    plane = pl.seeds_plane(x1, x2, x3)
    for uv, x in (((0, 0), x1), ((1, 0), x2), ((0, 1), x3)):
        np.testing.assert_allclose(plane.to_latent(np.array(uv, np.float32)), x, atol=1e-5)
    np.testing.assert_allclose(plane.project(x3), [0, 1], atol=1e-4)


def test_projected_covariance_matches_projected_samples():
    rng = np.random.default_rng(4)
    plane, _ = pl.pca_plane(rng.standard_normal((300, 6)) * np.arange(1, 7))
    mu = rng.standard_normal(6)
    sigma = rng.uniform(0.2, 2.0, 6)
    z = mu + sigma * rng.standard_normal((200_000, 6))
    empirical = np.cov(plane.project(z).T)
    np.testing.assert_allclose(plane.project_cov(sigma ** 2), empirical, rtol=0.03, atol=0.01)
    # the 2-D latent itself: the ellipse's axes are just sigma_1 and sigma_2
    np.testing.assert_allclose(pl.identity_plane().project_cov(np.array([0.25, 4.0])), np.diag([0.25, 4.0]))


def test_ellipse_points_lie_at_k_sigma():
    cov = np.array([[2.0, 0.8], [0.8, 0.5]])
    pts = pl.ellipse(np.array([1.0, -2.0]), cov, k=2.0)
    d = pts - [1.0, -2.0]
    mahal = np.sqrt(np.einsum("ni,ij,nj->n", d, np.linalg.inv(cov), d))
    np.testing.assert_allclose(mahal, 2.0, rtol=1e-4)


def test_grid_and_mosaic_read_like_the_map():
    centres = pl.grid_centres((0, 4), (0, 2), 4)
    # first point top-left, last bottom-right (v grows upwards)
    np.testing.assert_allclose(centres[0], [0.5, 1.75])
    np.testing.assert_allclose(centres[-1], [3.5, 0.25])
    images = np.arange(16, dtype=np.float32)[:, None, None] * np.ones((16, 3, 5), np.float32)
    m = pl.mosaic(images, 4)
    assert m.shape == (12, 20)
    assert m[0, 0] == 0 and m[0, 19] == 3 and m[11, 0] == 12 and m[11, 19] == 15


def test_distance_field_is_zero_at_the_codes_and_matches_brute_force():
    rng = np.random.default_rng(6)
    codes = rng.standard_normal((400, 5))
    np.testing.assert_allclose(nearest_distance(codes[:50], codes), 0, atol=1e-3)
    pts = rng.standard_normal((30, 5)) * 3
    brute = np.sqrt(((pts[:, None] - codes[None]) ** 2).sum(-1)).min(1)
    np.testing.assert_allclose(nearest_distance(pts, codes, chunk=7), brute, rtol=1e-5)


# ---------------------------------------------------------------- engine jobs

def test_encode_test_set_is_numpy_and_cached_per_model():
    ctx = _ctx("vae", 2)
    out = EncodeTestSet(limit=LIMIT).run(ctx)
    assert out["codes"].shape == (LIMIT, 2) and out["codes"].dtype == np.float32
    assert out["logvar"].shape == (LIMIT, 2)
    assert out["images"].shape == (LIMIT, 28, 28) and out["images"].dtype == np.uint8
    assert out["labels"].shape == (LIMIT,) and set(out["labels"]) <= set(range(10))
    # the codes are the encoder's mu for those images
    x = ctx.data[("fashion-mnist", "test")].images[:5]
    with torch.no_grad():
        np.testing.assert_allclose(out["codes"][:5], ctx.model.encode(x).mu.numpy(), atol=1e-5)
    calls = []
    ctx.model.encode = lambda x: calls.append(1)          # a second run must not encode again
    assert EncodeTestSet(limit=LIMIT).run(ctx) is out
    assert not calls


def test_plain_autoencoder_has_no_logvar():
    out = EncodeTestSet(limit=50).run(_ctx("ae", 3))
    assert out["logvar"] is None and out["codes"].shape == (50, 3)


def test_decode_points_matches_the_model_and_reports_no_label_without_classifier():
    ctx = _ctx("ae", 2)
    z = np.array([[0.5, -1.0], [2.0, 2.0]], np.float32)
    job = DecodePoints("probe-0", z)
    assert job.key == "decode:probe-0" and job.coalesce
    out = job.run(ctx)
    with torch.no_grad():
        expect = ctx.model.decode(torch.from_numpy(z))[:, 0].numpy()
    np.testing.assert_allclose(out.images, expect, atol=1e-6)
    assert out.labels is None and out.confidences is None and out.critic is None   # an AE has no detective
    assert out.ms > 0                                              # the decoder's own time, measured


def test_decode_points_carries_the_classifiers_label_and_confidence():
    import models.classifier  # noqa: F401  (registers the family)

    ctx = _ctx("ae", 2)
    torch.manual_seed(0)
    ctx.classifier = build("classifier", {"channels": (4, 8), "feature_dim": 16}).eval()
    out = DecodePoints("grid", np.zeros((7, 2), np.float32)).run(ctx)
    assert out.labels.shape == (7,) and set(out.labels) <= set(range(10))
    assert np.all((out.confidences >= 0.1) & (out.confidences <= 1.0))
    with torch.no_grad():
        want, _ = ctx.classifier.classify(ctx.model.decode(torch.zeros(7, 2)))
    np.testing.assert_array_equal(out.labels, want.numpy())


def test_a_gans_decode_carries_the_discriminators_verdict():
    torch.manual_seed(0)
    gan = build("gan", {"latent_dim": 4, "channels": (8, 16)}).eval()
    ctx = EngineContext(device=torch.device("cpu"), model=gan, model_path="/tmp/gan-4.safetensors")
    z = np.random.default_rng(2).standard_normal((5, 4)).astype(np.float32)
    out = DecodePoints("map-grid", z).run(ctx)
    with torch.no_grad():
        want = ctx.model.critic(ctx.model.decode(torch.from_numpy(z))).numpy()
    assert out.critic.shape == (5,) and np.all((out.critic >= 0) & (out.critic <= 1))
    np.testing.assert_allclose(out.critic, want, atol=1e-6)
    assert out.labels is None                       # no classifier here: the verdict comes anyway
    first, second = list(DecodeProbe("probe-0", z[0]).run(ctx))
    assert not first.labelled and first.critic is None
    assert second.labelled and second.critic[0] == pytest.approx(float(want[0]), abs=1e-6)


def test_distance_to_data_is_zero_on_encoded_points_and_grows_away():
    ctx = _ctx("ae", 4)
    enc = encode_test_set(ctx, "fashion-mnist", LIMIT)
    far = enc["codes"].mean(0) + 100 * enc["spread"]
    out = DistanceToData(np.vstack([enc["codes"][:10], far]), limit=LIMIT).run(ctx)
    np.testing.assert_allclose(out["distance"][:10], 0, atol=1e-3)
    assert out["distance"][10] > 90          # in units of the data's latent std per axis
    assert out["spread"] == pytest.approx(latent_spread(enc["codes"]))


def test_posterior_samples_are_mu_plus_sigma_eps():
    ctx = _ctx("vae", 3)
    enc = encode_test_set(ctx, "fashion-mnist", LIMIT)
    out = SamplePosterior(index=7, n=6, seed=3, limit=LIMIT).run(ctx)
    mu, sigma = enc["codes"][7], np.exp(0.5 * enc["logvar"][7])
    np.testing.assert_allclose(out["z"], mu + sigma * out["eps"], rtol=1e-5, atol=1e-6)
    assert out["images"].shape == (6, 28, 28)
    assert not np.allclose(out["images"][0], out["images"][1])      # different eps, different pictures
    again = SamplePosterior(index=7, n=6, seed=3, limit=LIMIT).run(ctx)
    np.testing.assert_array_equal(again["z"], out["z"])             # seeded


def test_posterior_samples_refused_for_a_point_encoder():
    with pytest.raises(MissingCapabilityError, match="point"):
        SamplePosterior(index=0, limit=50).run(_ctx("ae", 2))


def test_encode_refused_without_encoder():
    ctx = _ctx("ae", 2)
    ctx.model.capabilities = frozenset({"decode", "sample"})
    with pytest.raises(MissingCapabilityError, match="no encoder"):
        EncodeTestSet(limit=10).run(ctx)


def test_denoise_point_streams_progress_and_ends_on_the_models_own_decode():
    from explorer.engine.jobs.map import DenoisePoint

    torch.manual_seed(0)
    model = build("ddpm", {"base_channels": 8, "channel_mults": (1, 2), "timesteps": 50, "decode_steps": 4}).eval()
    ctx = EngineContext(device=torch.device("cpu"), model=model, model_path="/tmp/ddpm.safetensors")
    z = np.random.default_rng(0).standard_normal(784).astype(np.float32)
    job = DenoisePoint("probe-1", z, steps=20)
    assert job.key == "decode:probe-1" and job.coalesce
    items = list(job.run(ctx))
    assert [it.step for it in items] == [1, 2, 3, 4]              # capped at the model's 4 decode steps
    times = [it.ms for it in items]
    assert times[0] > 0 and times == sorted(times)                  # U-Net time so far, growing step by step
    assert all(it.steps == 4 for it in items)
    with torch.no_grad():
        want = model.decode(torch.from_numpy(z)[None])[0, 0].numpy()
    np.testing.assert_allclose(items[-1].images[0], want, atol=1e-5)   # deterministic DDIM: same picture
    assert items[0].images.shape == (1, 28, 28) and items[0].labels is None    # progress: x0 guesses


def test_probe_decode_sends_the_pixels_first_and_the_label_after():
    import models.classifier  # noqa: F401  (registers the family)

    ctx = _ctx("ae", 2)
    z = np.array([0.3, -0.7], np.float32)
    job = DecodeProbe("probe-0", z)
    assert job.key == "decode:probe-0" and job.coalesce
    with torch.no_grad():
        want = ctx.model.decode(torch.from_numpy(z)[None])[0, 0].numpy()
    only = list(job.run(ctx))                       # no classifier: just the picture
    assert len(only) == 1 and only[0].labels is None
    np.testing.assert_allclose(only[0].images[0], want, atol=1e-6)
    torch.manual_seed(0)
    ctx.classifier = build("classifier", {"channels": (4, 8), "feature_dim": 16}).eval()
    first, second = list(job.run(ctx))
    assert first.labels is None and not first.labelled
    np.testing.assert_array_equal(first.images, second.images)
    assert second.labelled and second.labels.shape == (1,) and 0 < second.confidences[0] <= 1


def test_the_encoded_test_set_is_kept_on_disk_for_the_next_start(tmp_path, own_result_cache):
    """A second start (a fresh model slot) reads the map's dots back instead of loading data and encoding."""
    from models import checkpoint

    ctx = _ctx("vae", 2)
    path = tmp_path / "vae.safetensors"
    checkpoint.save(ctx.model, path, dataset="fashion-mnist", train_steps=0)
    ctx.model_path = str(path)
    first = encode_test_set(ctx, "fashion-mnist", LIMIT)
    assert list((own_result_cache / "encoded").glob("*.npz"))
    fresh = EngineContext(device=torch.device("cpu"), model=ctx.model, model_path=str(path))
    fresh.model.encode = lambda x: (_ for _ in ()).throw(AssertionError("encoded again"))
    again = encode_test_set(fresh, "fashion-mnist", LIMIT)
    assert fresh.data == {}                                   # no data set was loaded either
    for key in ("codes", "logvar", "labels", "images"):
        np.testing.assert_array_equal(again[key], first[key])
    assert again["classes"] == first["classes"] and again["spread"] == first["spread"]
    other = tmp_path / "other.safetensors"                      # other bytes: its own entry, never this one
    checkpoint.save(_ctx("vae", 2, hidden=(16,)).model, other, dataset="fashion-mnist", train_steps=0)
    assert len({p.name for p in (own_result_cache / "encoded").glob("*.npz")}) == 1
    third = EngineContext(device=torch.device("cpu"), model=fresh.model, model_path=str(other))
    with pytest.raises(AssertionError, match="encoded again"):
        encode_test_set(third, "fashion-mnist", LIMIT)


def test_a_broken_cache_entry_is_computed_again(tmp_path, own_result_cache):
    from models import checkpoint

    ctx = _ctx("ae", 2)
    path = tmp_path / "ae.safetensors"
    checkpoint.save(ctx.model, path, dataset="fashion-mnist", train_steps=0)
    ctx.model_path = str(path)
    first = encode_test_set(ctx, "fashion-mnist", 50)
    for entry in (own_result_cache / "encoded").glob("*.npz"):
        entry.write_bytes(b"not a numpy archive")
    again = encode_test_set(EngineContext(device=torch.device("cpu"), model=ctx.model, model_path=str(path)),
                            "fashion-mnist", 50)
    np.testing.assert_array_equal(again["codes"], first["codes"])
    assert again["logvar"] is None


def test_a_start_with_the_encoding_cached_reads_no_data_set(monkeypatch):
    """The map's dots come from the stored encoding without opening the named data set (which imports
    torchvision, most of a start's wait); only a folder is checked for being gone."""
    import models.data

    def refuse(*args, **kwargs):
        raise AssertionError("the data set was read although its encoding was at hand")

    monkeypatch.setattr(models.data, "load_dataset", refuse)
    ctx = _ctx("vae", 2)
    encoded = {"codes": np.zeros((3, 2), np.float32)}
    ctx.cache[("map:encoded", "fashion-mnist", None)] = encoded
    assert EncodeTestSet(dataset="fashion-mnist").run(ctx) is encoded
