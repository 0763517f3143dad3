"""The figures the compare view writes beside its pictures, as text: what a checkpoint recorded about itself
(benchmarks/quality.py --record, in ModelInfo.metrics["quality"]) and what was measured live here.

A figure a checkpoint does not hold is "not measured", never a guess. Plain Python: no Qt, no torch.
"""
from __future__ import annotations

import math
from typing import Any, Iterable

from models.catalog import DEFAULT_DATASET

NOT_MEASURED = "not measured"


def quality(info: Any) -> dict[str, Any]:
    """The recorded quality figures of a ModelInfo ({} when it has none)."""
    metrics = getattr(info, "metrics", None) or {}
    q = metrics.get("quality") if isinstance(metrics, dict) else None
    return q if isinstance(q, dict) else {}


def number(value: Any) -> float | None:
    """A finite float, or None for anything else (a missing figure, a null from a diverged model)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def recon_mse(info: Any) -> float | None:
    """The mean test-set reconstruction MSE recorded in the checkpoint."""
    return number(quality(info).get("recon_mse"))


def pca_mse(info: Any, others: Iterable[Any] = ()) -> float | None:
    """The PCA baseline at the model's latent size: its own record, else one recorded by another model of the same
    data set and latent size (PCA depends on nothing else), else None."""
    own = number(quality(info).get("pca_mse"))
    if own is not None:
        return own
    for other in others:
        if other is info or getattr(other, "dataset", None) != info.dataset:
            continue
        if getattr(other, "latent_dim", None) == info.latent_dim:
            found = number(quality(other).get("pca_mse"))
            if found is not None:
                return found
    return None


def fid_text(info: Any) -> str:
    """'FID 143 (n = 2,000)' from the checkpoint's record, or 'FID not measured'; for a model whose data set has no
    classifier (whose features FID measures in and which labels its pictures), 'no labels, no FID: ' and why."""
    if not getattr(info, "has_classifier", True):
        reason = getattr(info, "classifier_reason", "") or "there is no classifier for its data set"
        return f"no labels, no FID: {reason}"
    q = quality(info)
    fid = number(q.get("fid"))
    if fid is None:
        return f"FID {NOT_MEASURED}"
    n = q.get("fid_n")
    dataset = getattr(info, "dataset", None) or DEFAULT_DATASET
    size = f"n = {n:,}" if isinstance(n, int) and not isinstance(n, bool) else ""
    # each data set's FID is measured in its own classifier's features: a shapes FID is on another scale
    where = "" if dataset == DEFAULT_DATASET else f"{dataset} features"
    parts = ", ".join(x for x in (size, where) if x)
    return f"FID {fid:.0f}" + (f" ({parts})" if parts else "")


def mse_text(value: float | None) -> str:
    return NOT_MEASURED if value is None else f"{value:.4f}"


def header_text(info: Any, others: Iterable[Any] = ()) -> str:
    """A reconstruction column's header: the name, the recorded test MSE and the PCA baseline beside it."""
    return (f"{info.name}\ntest MSE {mse_text(recon_mse(info))}\n"
            f"PCA {info.latent_dim}-d {mse_text(pca_mse(info, others))}")


def ms_text(ms: float | None) -> str:
    if ms is None:
        return "… ms/sample"
    return f"{ms:.3g} ms/sample" if ms < 1000 else f"{ms / 1000:.2f} s/sample"


def mean(values: Any) -> float | None:
    try:
        seq = [float(v) for v in values]
    except TypeError:
        return None
    return sum(seq) / len(seq) if seq else None


def label_text(classes: tuple[str, ...], label: int | None, confidence: float | None = None) -> str:
    """A classifier's label for one sample ('Bag' or 'Bag 93%'), '' when there is no classifier."""
    if label is None:
        return ""
    name = classes[int(label)] if 0 <= int(label) < len(classes) else str(int(label))
    return name if confidence is None else f"{name} {confidence:.0%}"
