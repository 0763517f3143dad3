"""What ships in weights/: every planned model, each saying how it was trained and how good it measured, and
those figures telling the seed's story (diffusion draws best and slowest; the forger beats the summariser; a plain
autoencoder's prior samples fall into its holes; VAE reconstructions are blurrier). The slow tests measure every
claim again from the files, so the recorded figures cannot drift from what the weights do."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from models import checkpoint, metrics
from models.data import load_dataset

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "weights"


@pytest.fixture(scope="module")
def shipped_plans(train_shipped) -> tuple:
    """The plans of benchmarks/train_shipped.py, the one command that retrains every shipped file (without the
    stages towards one, which stay beside the training states)."""
    return tuple(plan for plan in train_shipped.PLANS if plan.ships)


@pytest.fixture(scope="module")
def grey_plans(shipped_plans) -> tuple:
    """The shipped Fashion-MNIST models, whose figures tell the seed's story (the colour ones have their own)."""
    return tuple(plan for plan in shipped_plans if plan.dataset == "fashion-mnist")


def quality(name: str) -> dict:
    meta = checkpoint.read_metadata(WEIGHTS / f"{name}.safetensors")
    figures = meta.metrics.get("quality")
    assert figures, f"{name} carries no measured quality: run python benchmarks/quality.py --record"
    return figures


def test_every_planned_model_ships_with_how_it_was_trained(shipped_plans):
    total = sum(p.stat().st_size for p in WEIGHTS.glob("*.safetensors"))
    assert total < 60 * 2 ** 20                                   # weights/ stays under 60 MB
    for plan in shipped_plans:
        meta = checkpoint.read_metadata(WEIGHTS / f"{plan.name}.safetensors")
        assert meta.family == plan.family and meta.dataset == plan.dataset
        assert meta.train_steps > 0 and meta.train_steps == meta.training["steps"]
        assert meta.training["seconds"] > 0 and meta.training["device"].split(":")[0] in ("cpu", "cuda", "mps")
        assert meta.training["command"] == f"python benchmarks/train_shipped.py --only {plan.name}"
    classifier = checkpoint.read_metadata(WEIGHTS / "classifier.safetensors")
    assert classifier.metrics["test_accuracy"] >= 0.91


def test_the_recorded_figures_tell_the_seeds_story(grey_plans):
    fid = {plan.name: quality(plan.name)["fid"] for plan in grey_plans}
    assert all(quality(plan.name)["fid_n"] >= 2000 for plan in grey_plans)
    # the sculptor draws best, then the forger, then the forger with a summariser, then the summariser
    assert fid["ddpm"] < fid["gan"] < fid["vaegan"] < fid["conv-vae-16"]
    assert "DDIM, 50 steps" in quality("ddpm")["sampler"]
    # the targets the README states: GAN below 35, VAE-GAN below 80
    assert fid["gan"] < 35 and fid["vaegan"] < 80
    # the VAE-GAN draws sharper than the conv VAE it grew from (README: 0.109 against 0.041); every model's
    # samples hold some detail (the CAE's blobs: 0.005) and none is much sharper than real images (0.183)
    samples = {plan.name: quality(plan.name)["sharpness"]["samples"] for plan in grey_plans}
    assert samples["vaegan"] > 2 * samples["conv-vae-16"]
    assert all(0.003 < v < 0.25 for v in samples.values()), samples
    # prior samples of a plain autoencoder land in its holes: far worse than its VAE twin's
    assert fid["cae-16"] > 1.5 * fid["conv-vae-16"] and fid["ae-2d"] > 1.2 * fid["vae-2d"]
    # a VAE's reconstructions are blurrier than its AE twin's
    assert quality("conv-vae-16")["sharpness"]["recon"] < quality("cae-16")["sharpness"]["recon"]
    # every autoencoder beats PCA with as many components
    for name in ("ae-2d", "vae-2d", "cae-16", "conv-vae-16", "vaegan"):
        assert quality(name)["recon_mse"] < quality(name)["pca_mse"], name
    # diffusion is the slowest, by orders of magnitude per sample
    assert quality("ddpm")["ms_per_sample_b64"] > 100 * quality("gan")["ms_per_sample_b64"]


@pytest.mark.slow
def test_the_plain_autoencoders_holes_measured_again_from_the_files():
    torch.manual_seed(0)
    classifier = checkpoint.load(WEIGHTS / "classifier.safetensors", "cpu").eval()
    test = load_dataset("fashion-mnist", "test").images
    ref = metrics.feature_stats(classifier, test)
    n = 500
    measured = {}
    for name in ("cae-16", "conv-vae-16"):
        model = checkpoint.load(WEIGHTS / f"{name}.safetensors", "cpu").eval()
        with torch.no_grad():
            x = model.decode(model.prior(n, torch.Generator().manual_seed(1)))
        measured[name] = metrics.fid_result(classifier, x, ref).fid
    assert measured["cae-16"] > 1.5 * measured["conv-vae-16"]


# ---------------------------------------------------------------------------------------------------------------
# Every claim above, measured again from the weights (fewer samples than quality.py, so FIDs sit higher, but
# every model pays the same small-sample bias, and each claim is an ordering or a ratio).

FID_N = 500


@pytest.fixture(scope="module")
def measured(grey_plans) -> dict:
    """name -> {fid, sharp_samples, recon_mse, pca_mse, sharp_recon, ms_b64}, measured now on the CPU from the
    files."""
    import time

    from models.core import DENOISE, ENCODE

    torch.manual_seed(0)
    classifier = checkpoint.load(WEIGHTS / "classifier.safetensors", "cpu").eval()
    test = load_dataset("fashion-mnist", "test").images
    ref = metrics.feature_stats(classifier, test)
    pca = metrics.pca_fit(load_dataset("fashion-mnist", "train").images[:20_000])
    held_out = test[:1000]
    out = {}
    for plan in grey_plans:
        model = checkpoint.load(WEIGHTS / f"{plan.name}.safetensors", "cpu").eval()
        gen = torch.Generator().manual_seed(1)
        kwargs = {"sampler": "ddim", "steps": 50} if DENOISE in model.capabilities else {}
        row = {}
        with torch.no_grad():
            x = torch.cat([model.sample(250, gen, **kwargs) for _ in range(FID_N // 250)])
            row["fid"] = metrics.fid_result(classifier, x, ref).fid
            row["sharp_samples"] = metrics.sharpness(x)
            t0 = time.perf_counter()
            model.sample(64, gen, **kwargs)
            row["ms_b64"] = (time.perf_counter() - t0) * 1000 / 64
            if ENCODE in model.capabilities:
                x_hat = model.decode(model.encode(held_out).mu)
                row["recon_mse"] = metrics.recon_mse(held_out, x_hat)
                row["pca_mse"] = metrics.pca_mse(pca, held_out, model.latent_dim)
                row["sharp_recon"] = metrics.sharpness(x_hat)
        out[plan.name] = row
    return out


@pytest.mark.slow
def test_the_seeds_story_measured_again_from_the_files(measured):
    fid = {name: row["fid"] for name, row in measured.items()}
    assert fid["ddpm"] < fid["gan"] < fid["conv-vae-16"]
    assert fid["cae-16"] > 1.5 * fid["conv-vae-16"] and fid["ae-2d"] > 1.2 * fid["vae-2d"]
    assert measured["conv-vae-16"]["sharp_recon"] < measured["cae-16"]["sharp_recon"]
    for name in ("ae-2d", "vae-2d", "cae-16", "conv-vae-16", "vaegan"):
        assert measured[name]["recon_mse"] < measured[name]["pca_mse"], name
    assert measured["ddpm"]["ms_b64"] > 100 * measured["gan"]["ms_b64"]


@pytest.mark.slow
def test_the_recorded_figures_are_what_the_files_measure_now(measured):
    """Each model's recorded FID (n = 2,000) and sample sharpness, against the same measured again at n = 500.
    At n = 500 an FID moves by about 10 % from seed to seed (the shipped models, seeds 1 to 3: GAN 32.3 to 33.8
    against 34.7 recorded, VAE-GAN 49.0 to 58.7 against 57.5, conv VAE 151 to 164 against 157) and sits a few
    points higher for its smaller sample (real images: about 4.9 at n = 500, 1.3 at n = 2,000); so it must land
    within 25 % of the recorded figure, plus 5 above it. Sharpness is a mean over images: within 20 %."""
    for name, row in measured.items():
        recorded = quality(name)
        assert 0.75 * recorded["fid"] < row["fid"] < 1.25 * recorded["fid"] + 5, (name, row["fid"], recorded["fid"])
        sharp = recorded["sharpness"]["samples"]
        assert abs(row["sharp_samples"] - sharp) < 0.2 * sharp, (name, row["sharp_samples"], sharp)
