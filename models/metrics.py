"""How good a model is, in numbers a person can check: domain FID, class labels, sharpness, reconstruction error.

The FID here is a *domain* FID: features come from the classifier of the model's own data set
(models/classifier.py: the shipped Fashion-MNIST one, or classifier-NAME.safetensors), not from Inception, so its
values are comparable with each other on one data set but not with published FIDs, nor across data sets. A data
set without a classifier of its own gets no FID (`fid_classifier` says why in one line): a classifier is never
applied to pictures of another data set or shape. A Frechet distance from few samples is biased upwards, so the
sample count always travels with the figure (FidResult.n).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .core import iter_batches


@dataclass(frozen=True)
class FeatureStats:
    """Mean (d,) and covariance (d, d) of classifier features, in float64, and how many images made them."""

    mu: Tensor
    sigma: Tensor
    n: int


@dataclass(frozen=True)
class FidResult:
    """A domain FID with the sample counts it was measured on (n generated or compared, n_ref reference)."""

    fid: float
    n: int
    n_ref: int

    def __str__(self) -> str:
        return f"{self.fid:.2f} (n={self.n} vs {self.n_ref})"


# ---------------------------------------------------------------------------------------------------------------
# Which classifier is the yardstick of which pictures: only the one trained on their data set at their shape

@dataclass(frozen=True)
class ClassifierMatch:
    """The classifier file for a data set's pictures, or None and why there is none (one sentence)."""

    path: Path | None
    reason: str = ""


def find_classifier(dataset: str, image_shape: Sequence[int], folders: Iterable[str | Path]) -> ClassifierMatch:
    """The classifier trained on `dataset` at `image_shape` (C, H, W), looked for in `folders` in order: first
    its own file (`classifier_file`), then any other classifier*.safetensors. Only a classifier whose checkpoint
    names this data set and this picture shape is ever returned; reads headers only."""
    from .checkpoint import CheckpointError, read_metadata
    from .classifier import Classifier, classifier_file, shape_text

    shape = tuple(int(s) for s in image_shape)
    own = classifier_file(dataset)
    wrong_shape: tuple[Path, tuple[int, ...]] | None = None
    broken: tuple[Path, str] | None = None
    seen: set[Path] = set()
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            continue
        others = sorted(p for p in folder.glob("classifier*.safetensors") if not p.name.endswith(".state.safetensors"))
        for path in [folder / own, *others]:
            key = path.resolve()
            if key in seen or not path.is_file():
                continue
            seen.add(key)
            try:
                meta = read_metadata(path)
            except CheckpointError as err:
                if path.name == own:
                    broken = broken or (path, str(err))
                continue
            if meta.family != Classifier.family or meta.dataset != dataset:
                continue
            if tuple(meta.image_shape) == shape:
                return ClassifierMatch(path)
            wrong_shape = wrong_shape or (path, tuple(meta.image_shape))
    what = f"{dataset} pictures of {shape_text(shape)}"
    if wrong_shape is not None:
        return ClassifierMatch(None, f"the classifier {wrong_shape[0].name} reads "
                                     f"{shape_text(wrong_shape[1])} pictures and this model draws {what}")
    if broken is not None:
        return ClassifierMatch(None, f"the classifier for {what} could not be loaded: {broken[1]}")
    return ClassifierMatch(None, f"there is no classifier for {what} ({own}); train one with python -m models "
                                 f"train --family classifier --data {dataset}")


def load_classifier(dataset: str, image_shape: Sequence[int], folders: Iterable[str | Path],
                    device: torch.device | str | None = None) -> tuple[Any, str]:
    """(the classifier for these pictures in eval mode, '') or (None, why there is none); see `find_classifier`.
    The model knows its data set as `.dataset`."""
    from .checkpoint import CheckpointError, load

    match = find_classifier(dataset, image_shape, folders)
    if match.path is None:
        return None, match.reason
    try:
        model = load(match.path, device)
    except CheckpointError as err:
        return None, f"the classifier for {dataset} pictures could not be loaded: {err}"
    model.dataset = dataset
    return model.eval(), ""


def fid_classifier(dataset: str, image_shape: Sequence[int], folders: Iterable[str | Path],
                   device: torch.device | str | None = None) -> tuple[Any, str]:
    """(the classifier a domain FID of `dataset` pictures at `image_shape` (C, H, W) is measured with, '') from
    the first of `folders` that holds one, or (None, 'no FID: why', one line) when none was trained on them."""
    classifier, reason = load_classifier(dataset, image_shape, folders, device)
    return (classifier, "") if classifier is not None else (None, f"no FID: {reason}")


@torch.no_grad()
def features(classifier, images: Tensor, batch_size: int = 500) -> Tensor:
    """Penultimate-layer features (N, d) of images (N, C, H, W) in [0, 1], computed in eval mode; ValueError (one
    sentence) for pictures of another shape than the classifier reads."""
    was_training = classifier.training
    classifier.eval()
    device = next(classifier.parameters()).device
    out = torch.cat([classifier.features(xb.to(device)).cpu() for xb in iter_batches(images, batch_size)])
    classifier.train(was_training)
    return out


def feature_stats_of(feats: Tensor) -> FeatureStats:
    """mu = mean(f), Sigma = cov(f) with the unbiased (n - 1) normaliser, in float64."""
    f = feats.to(torch.float64)
    if f.shape[0] < 2:
        raise ValueError("a covariance needs at least two samples")
    mu = f.mean(dim=0)
    centred = f - mu
    sigma = centred.T @ centred / (f.shape[0] - 1)
    return FeatureStats(mu, sigma, int(f.shape[0]))


def feature_stats(classifier, images: Tensor, batch_size: int = 500) -> FeatureStats:
    """Feature statistics of a set of images; compute the reference set's once and reuse it."""
    return feature_stats_of(features(classifier, images, batch_size))


def _sqrtm_psd(a: Tensor) -> Tensor:
    """Square root of a symmetric positive semi-definite matrix by eigendecomposition: V diag(sqrt(l)) V^T."""
    lam, v = torch.linalg.eigh((a + a.T) / 2)
    return (v * lam.clamp_min(0).sqrt()) @ v.T


def frechet_distance(a: FeatureStats, b: FeatureStats) -> float:
    """Frechet distance between the Gaussians N(mu_a, S_a) and N(mu_b, S_b) (Dowson & Landau 1982):

        d^2 = ||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a^{1/2} S_b S_a^{1/2})^{1/2})

    Tr((S_a S_b)^{1/2}) equals Tr((S_a^{1/2} S_b S_a^{1/2})^{1/2}); the second form is a symmetric PSD matrix, so
    its root comes from an eigendecomposition in float64 (no scipy, no complex parts to discard).
    """
    root_a = _sqrtm_psd(a.sigma)
    middle = root_a @ b.sigma @ root_a
    lam = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp_min(0)
    d2 = (a.mu - b.mu).pow(2).sum() + torch.trace(a.sigma) + torch.trace(b.sigma) - 2 * lam.sqrt().sum()
    return float(d2.clamp_min(0))


def fid_result(classifier, images: Tensor, reference: Tensor | FeatureStats, batch_size: int = 500) -> FidResult:
    """Domain FID of `images` against `reference` (images, or their precomputed FeatureStats), with counts."""
    stats = feature_stats(classifier, images, batch_size)
    ref = reference if isinstance(reference, FeatureStats) else feature_stats(classifier, reference, batch_size)
    return FidResult(frechet_distance(stats, ref), stats.n, ref.n)


def fid(classifier, images_a: Tensor, images_b: Tensor | FeatureStats) -> float:
    """Domain FID between two image sets (N, C, H, W) in [0, 1]; see fid_result for the counts too."""
    return fid_result(classifier, images_a, images_b).fid


def classify(classifier, images: Tensor) -> tuple[Tensor, Tensor]:
    """(class index (N,), softmax confidence (N,)) for each image.

    The confidence is a label for the class, never a realism score: a classifier is over-confident off the
    data it was trained on, and uniform noise can score 0.95 for some class.
    """
    return classifier.classify(images)


def laplacian_variance(images: Tensor) -> Tensor:
    """Per-image sharpness (N,): the variance of the 3x3 Laplacian response, over channels and valid pixels.

    A blurred image has weak second derivatives, so the variance falls as blur grows (Pech-Pacheco et al. 2000).
    """
    c = images.shape[1]
    kernel = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]],
                          dtype=images.dtype, device=images.device).expand(c, 1, 3, 3)
    lap = F.conv2d(images, kernel, groups=c)              # (N, C, H-2, W-2): no padding, so no border edges
    return lap.flatten(1).var(dim=1)


def sharpness(images: Tensor) -> float:
    """Mean variance of the Laplacian over a batch of images in [0, 1]; higher is sharper."""
    return float(laplacian_variance(images).mean())


def recon_mse(x: Tensor, x_hat: Tensor) -> float:
    """Mean squared error per pixel between images and their reconstructions, both in [0, 1]."""
    return float(F.mse_loss(x_hat.to(x.dtype), x))


@dataclass(frozen=True)
class PCAFit:
    """The training mean m (D,) and the covariance's eigenvectors (D, D), largest eigenvalue last (float64)."""

    mean: Tensor
    eigenvectors: Tensor


def pca_fit(train_images: Tensor) -> PCAFit:
    """Fit PCA once on (N, C, H, W) images; `pca_mse` then answers any number of components k."""
    x = train_images.flatten(1).to(torch.float64)
    m = x.mean(dim=0)
    centred = x - m
    cov = centred.T @ centred / (x.shape[0] - 1)          # (D, D)
    _, v = torch.linalg.eigh(cov)                         # eigenvalues ascending
    return PCAFit(m, v)


def pca_mse(fit: PCAFit, test_images: Tensor, k: int) -> float:
    """Per-pixel MSE of x_hat = m + W W^T (x - m), W the top-k eigenvectors (no clamping to [0, 1])."""
    if not 0 <= k <= fit.eigenvectors.shape[1]:
        raise ValueError(f"k must be between 0 and {fit.eigenvectors.shape[1]}, got {k}")
    w = fit.eigenvectors[:, fit.eigenvectors.shape[1] - k:]   # (D, k)
    t = test_images.flatten(1).to(torch.float64) - fit.mean
    return float((t @ w @ w.T - t).pow(2).mean())


def pca_baseline(train_images: Tensor, test_images: Tensor, k: int) -> float:
    """Per-pixel test MSE of the best linear k-dimensional code: PCA fitted on the training images.

    x_hat = m + W W^T (x - m), with W the top-k eigenvectors of the training covariance. An autoencoder with a
    k-dimensional latent that cannot beat this has learned nothing a linear projection would not.
    """
    return pca_mse(pca_fit(train_images), test_images, k)
