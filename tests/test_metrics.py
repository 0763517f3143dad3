"""The yardstick itself: the shipped classifier is accurate, and the domain FID and sharpness move the way a
person looking at the images would expect (more noise or blur: worse FID; more blur: less sharp)."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torchvision.transforms.functional import gaussian_blur

from models import metrics
from models.classifier import Classifier, ClassifierConfig
from models.data import load_dataset

WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "classifier.safetensors"


def load_classifier(path: Path) -> Classifier:
    from models import checkpoint

    model = checkpoint.load(path, device="cpu")
    assert isinstance(model, Classifier)
    return model.eval()


def blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    k = 2 * math.ceil(3 * sigma) + 1
    return gaussian_blur(images, kernel_size=[k, k], sigma=[sigma, sigma])


def noisy(images: torch.Tensor, sigma: float, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (images + sigma * torch.randn(images.shape, generator=g)).clamp(0, 1)


@pytest.fixture(scope="module")
def shipped():
    """The shipped classifier, the test set, its features (one pass, reused) and 2,000 training images."""
    if not WEIGHTS.exists():
        pytest.fail(f"{WEIGHTS} is missing: run python benchmarks/train_classifier.py")
    model = load_classifier(WEIGHTS)
    test = load_dataset("fashion-mnist", "test")
    feats = metrics.features(model, test.images)
    train = load_dataset("fashion-mnist", "train", subset=2000).images
    return model, test, feats, metrics.feature_stats_of(feats), train


@pytest.mark.slow
def test_shipped_classifier_reaches_its_accuracy_on_the_whole_test_set(shipped):
    model, test, feats, _, _ = shipped
    with torch.no_grad():
        predicted = model.head(feats).argmax(dim=1)       # head of the same pass, eval mode
    accuracy = (predicted == test.labels).float().mean().item()
    assert accuracy >= 0.91, f"test accuracy {accuracy:.4f}"


@pytest.mark.slow
def test_real_vs_real_fid_is_under_a_tenth_of_noisy_fid(shipped):
    model, _, _, ref, train = shipped
    real = metrics.fid_result(model, train, ref)
    noised = metrics.fid_result(model, noisy(train, 0.1), ref)
    assert (real.n, real.n_ref) == (2000, 10000)
    assert real.fid < 0.1 * noised.fid, f"real {real}, noise 0.1 {noised}"


@pytest.mark.slow
def test_fid_grows_step_by_step_with_noise_and_with_blur(shipped):
    model, _, _, ref, train = shipped
    real = metrics.fid(model, train, ref)
    by_noise = [metrics.fid(model, noisy(train, s), ref) for s in (0.05, 0.1, 0.2)]
    by_blur = [metrics.fid(model, blur(train, s), ref) for s in (0.5, 1.0, 2.0)]
    assert real < by_noise[0] < by_noise[1] < by_noise[2], (real, by_noise)
    assert real < by_blur[0] < by_blur[1] < by_blur[2], (real, by_blur)


def test_sharpness_falls_with_blur():
    images = load_dataset("fashion-mnist", "test", subset=256).images
    values = [metrics.sharpness(images)] + [metrics.sharpness(blur(images, s)) for s in (0.5, 1.0, 2.0)]
    assert values == sorted(values, reverse=True) and len(set(values)) == 4, values
    assert metrics.sharpness(torch.full((4, 1, 28, 28), 0.5)) == 0.0


def test_classify_returns_a_valid_class_and_confidence_per_image(shipped):
    model, test, _, _, _ = shipped
    x = torch.cat([test.images[:64], torch.rand(8, 1, 28, 28)])
    labels, confidences = metrics.classify(model, x)
    assert labels.shape == confidences.shape == (72,)
    assert labels.dtype == torch.int64 and labels.min() >= 0 and labels.max() <= 9
    assert (confidences >= 0.1).all() and (confidences <= 1.0).all()
    assert (labels[:64] == test.labels[:64]).float().mean() >= 0.85
    one, conf = model.classify(test.images[:1])
    assert one.item() == labels[0].item() and conf.item() == pytest.approx(confidences[0].item(), abs=1e-5)


def _stats(mu, sigma) -> metrics.FeatureStats:
    return metrics.FeatureStats(torch.as_tensor(mu, dtype=torch.float64),
                                torch.as_tensor(sigma, dtype=torch.float64), 100)


def test_frechet_distance_of_diagonal_gaussians_matches_the_closed_form():
    # Diagonal covariances commute, so d^2 = |mu_a - mu_b|^2 + sum_i (sqrt(s_a,i) - sqrt(s_b,i))^2.
    a = _stats([0.0, 1.0, 2.0], torch.diag(torch.tensor([1.0, 4.0, 9.0])))
    b = _stats([1.0, 1.0, 0.0], torch.diag(torch.tensor([4.0, 1.0, 1.0])))
    expected = (1 + 0 + 4) + ((1 - 2) ** 2 + (2 - 1) ** 2 + (3 - 1) ** 2)
    assert metrics.frechet_distance(a, b) == pytest.approx(expected, rel=1e-9)


def test_frechet_distance_is_symmetric_and_zero_on_itself_for_non_commuting_covariances():
    g = torch.Generator().manual_seed(1)
    ma, mb = torch.randn(6, 6, generator=g, dtype=torch.float64), torch.randn(6, 6, generator=g, dtype=torch.float64)
    a = _stats(torch.zeros(6), ma @ ma.T)
    b = _stats(torch.ones(6), mb @ mb.T + 0.1 * torch.eye(6, dtype=torch.float64))
    assert metrics.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    assert metrics.frechet_distance(a, b) == pytest.approx(metrics.frechet_distance(b, a), rel=1e-8)
    assert metrics.frechet_distance(a, b) > 6.0     # at least the squared distance of the means


def test_pca_baseline_improves_with_more_components_and_is_exact_at_full_rank():
    train = load_dataset("fashion-mnist", "train", subset=1000).images
    test = load_dataset("fashion-mnist", "test", subset=200).images
    fit = metrics.pca_fit(train)
    errors = [metrics.pca_mse(fit, test, k) for k in (0, 2, 16, 64)]
    assert errors == sorted(errors, reverse=True) and len(set(errors)) == 4, errors
    mean_only = (test.flatten(1).double() - train.flatten(1).double().mean(0)).pow(2).mean().item()
    assert errors[0] == pytest.approx(mean_only, rel=1e-9)
    assert metrics.pca_mse(fit, test, 28 * 28) < 1e-12
    assert metrics.pca_baseline(train, test, 16) == pytest.approx(errors[2], rel=1e-12)


def test_recon_mse_is_per_pixel():
    x = torch.zeros(2, 1, 28, 28)
    assert metrics.recon_mse(x, x) == 0.0
    assert metrics.recon_mse(x, x + 0.5) == pytest.approx(0.25)


def test_an_untrained_classifier_gives_features_of_its_declared_width():
    model = Classifier(ClassifierConfig(channels=(4, 8), feature_dim=16))
    assert metrics.features(model, torch.rand(3, 1, 28, 28)).shape == (3, 16)
    with pytest.raises(ValueError, match="labelled"):
        model.training_step(torch.rand(2, 1, 28, 28), {}, torch.Generator())


def test_the_classifier_is_a_model_but_not_a_latent_one():
    """It loads like any checkpoint, but has no latent space, so it offers no latent size to ask for."""
    from models.core import LatentModel, Model

    model = Classifier(ClassifierConfig(channels=(4, 8), feature_dim=16))
    assert isinstance(model, Model) and not isinstance(model, LatentModel)
    assert not hasattr(model, "latent_dim") and not hasattr(model, "prior")
    assert model.image_shape == (1, 28, 28)


def test_a_few_classifier_steps_lower_the_loss():
    from models.train import TrainSettings

    torch.manual_seed(0)
    data = load_dataset("fashion-mnist", "train", subset=256)
    model = Classifier(ClassifierConfig(channels=(8, 16), feature_dim=32))
    opt = model.configure_optimizers(TrainSettings(lr=3e-3))
    g = torch.Generator().manual_seed(0)
    losses = [model.training_step(data.images, opt, g, y=data.labels)["ce"] for _ in range(15)]
    assert losses[-1] < 0.7 * losses[0], losses
