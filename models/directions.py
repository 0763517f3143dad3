"""Directions in a latent space: what to add to a code z to move its picture along one meaning.

Four kinds, each a `Direction` with where it came from:

- principal: the PCA of codes (an encoder family's test set, read off the posterior mean mu); for a generator
  without an encoder, GANSpace (Härkönen et al. 2020): the PCA of an early layer's activations y = G_1(z) over
  sampled z, carried back to z by regression (the paper's way for models that are not StyleGAN);
- attribute: from the mean code of class A to that of class B (or of a factor's first value to its last);
- groups: from the mean code of one group of pictures a user picked to another's (Latent Space Cartography);
- analogy: a - b, so that moving c along it by its whole length lands on a - b + c.

A direction carries sigma, the spread of codes along it, so a move reads in units a person can compare across
directions and models: `move(z, [d], [2.0])` is two standard deviations of the data along d. Torch only.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor, nn

PRINCIPAL, ATTRIBUTE, GROUPS, ANALOGY = "principal", "attribute", "groups", "analogy"
KINDS = (PRINCIPAL, ATTRIBUTE, GROUPS, ANALOGY)
MAX_MOVES = 4                      # directions applied at once: one slider each
GANSPACE_SAMPLES = 4000            # sampled z for GANSpace's PCA (the paper uses 10^6 on BigGAN; 16-d z needs few)
EPS = 1e-12


@dataclass(frozen=True)
class Direction:
    """A direction in latent space: `vector` (d,) is added to z; `sigma` is the spread of codes along it, the
    unit sliders move in. `kind` is one of KINDS; `source` says in words where it came from."""

    name: str
    kind: str
    source: str
    vector: Tensor
    sigma: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"a direction's kind is one of {', '.join(KINDS)}, not {self.kind!r}")
        if self.vector.ndim != 1 or not bool(torch.isfinite(self.vector).all()):
            raise ValueError("a direction's vector must be one finite row of numbers, (d,)")
        if not (math.isfinite(self.sigma) and self.sigma > 0):
            raise ValueError(f"a direction's sigma must be a positive number, not {self.sigma}")

    @property
    def unit(self) -> Tensor:
        """vector / |vector|: the way it points."""
        return self.vector / self.vector.norm().clamp_min(EPS)

    @property
    def length(self) -> float:
        """|vector| in units of sigma: the amount at which `move` adds the whole vector (one class-mean distance,
        the full a - b of an analogy)."""
        return float(self.vector.norm()) / self.sigma


def spread(codes: Tensor, vector: Tensor) -> float:
    """The standard deviation of codes (N, d) projected on the unit vector along `vector`; 1 when undefined."""
    if codes.shape[0] < 2:
        return 1.0
    u = vector.to(codes.dtype) / vector.norm().clamp_min(EPS)
    s = float((codes @ u).std())
    return s if math.isfinite(s) and s > EPS else 1.0


def move(z: Tensor, directions: Sequence[Direction], amounts: Sequence[float]) -> Tensor:
    """z + sum_i a_i sigma_i u_i: z (d,) or (B, d) moved by amounts a_i (in sigma) along up to MAX_MOVES directions."""
    if len(directions) != len(amounts):
        raise ValueError(f"{len(directions)} directions need as many amounts, not {len(amounts)}")
    if len(directions) > MAX_MOVES:
        raise ValueError(f"at most {MAX_MOVES} directions move a picture at once, not {len(directions)}")
    out = z.clone()
    for d, a in zip(directions, amounts):
        out = out + float(a) * d.sigma * d.unit.to(device=z.device, dtype=z.dtype)
    return out


def latent_codes(model: nn.Module, images: Tensor, batch_size: int = 1000) -> Tensor:
    """The codes of images (N, C, H, W): the posterior mean mu of an encoder family, on the CPU."""
    device = next(model.parameters()).device
    with torch.no_grad():
        return torch.cat([model.encode(x.to(device)).mu.float().cpu() for x in images.split(batch_size)])


# -- principal directions ---------------------------------------------------------------------------------------

def principal_directions(codes: Tensor, k: int = 8, source: str = "the encoded test set") -> list[Direction]:
    """The top-k principal directions of codes (N, d): the eigenvectors of their covariance, largest variance
    first, each with sigma = sqrt(its eigenvalue). Signs are fixed so each vector's largest entry is positive."""
    x = codes.to(torch.float64)
    centred = x - x.mean(dim=0)
    cov = centred.T @ centred / max(1, x.shape[0] - 1)           # (d, d)
    lam, v = torch.linalg.eigh(cov)                              # ascending
    order = torch.argsort(lam, descending=True)[:min(k, v.shape[1])]
    out = []
    for rank, i in enumerate(order.tolist(), start=1):
        u = _signed(v[:, i])
        out.append(Direction(f"PC {rank}", PRINCIPAL, f"PCA of {source}", u.float(),
                             math.sqrt(max(float(lam[i]), EPS))))
    return out


def top_components(centred: Tensor, k: int, seed: int = 0) -> Tensor:
    """The top-k right singular vectors (D, k) of centred data (N, D), largest first: randomized SVD (Halko et al.
    2011) with a few power iterations, seeded, so thousands of activation dimensions take a fraction of a second."""
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        _, _, v = torch.svd_lowrank(centred, q=min(k + 10, *centred.shape), niter=4)
    finally:
        torch.random.set_rng_state(state)
    return v[:, :k]


def _signed(u: Tensor) -> Tensor:
    return u if float(u[torch.argmax(u.abs())]) >= 0 else -u


def early_layer(model: nn.Module) -> nn.Module:
    """The generator's first activation (its first ReLU-like module): GANSpace's layer for a non-StyleGAN model
    (the paper takes BigGAN's first linear layer's output)."""
    net = model.decoding_network() if hasattr(model, "decoding_network") else getattr(model, "decoder", model)
    for module in net.modules():
        if isinstance(module, (nn.ReLU, nn.LeakyReLU, nn.SiLU, nn.GELU, nn.Tanh)):
            return module
    raise ValueError("the generator has no activation layer to take GANSpace's principal components of")


class _Stop(Exception):
    """Raised by the hook: nothing past the early layer needs computing."""


def layer_activations(model: nn.Module, z: Tensor, layer: nn.Module, batch_size: int = 1000) -> Tensor:
    """y = G_1(z): the activations (N, D) of `layer` for latents z (N, d), flattened; G runs only up to it."""
    caught: list[Tensor] = []

    def hook(_module, _inputs, output):
        caught.append(output.detach().flatten(1).float().cpu())
        raise _Stop

    handle = layer.register_forward_hook(hook)
    try:
        with torch.no_grad():
            for zb in z.split(batch_size):
                try:
                    model.decode(zb)
                except _Stop:
                    pass
    finally:
        handle.remove()
    return torch.cat(caught)


def ganspace(model: nn.Module, k: int = 8, n: int = GANSPACE_SAMPLES,
             generator: torch.Generator | None = None) -> list[Direction]:
    """GANSpace (Härkönen et al. 2020, section 2.2, non-StyleGAN): sample z_j ~ N(0, I), take y_j = G_1(z_j) at
    an early layer, the PCA y ~ mu + V x, x_j = V^T (y_j - mu); then regress z on x by least squares,
    U = argmin_U sum_j |U x_j - z_j|^2, and take U's columns as the latent directions. Direction k's vector is
    U_k sigma_k (one standard deviation of component k, in z), ordered by the activations' variance."""
    was_training = model.training
    model.eval()
    try:
        z = model.prior(n, generator)                                  # (N, d)
        y = layer_activations(model, z, early_layer(model))           # (N, D) float32
    finally:
        model.train(was_training)
    z = z.float().cpu().to(torch.float64)
    k = min(k, z.shape[1], y.shape[0] - 1)
    mu = y.mean(dim=0)
    centred = y - mu
    v = top_components(centred, k)                                     # (D, k), largest variance first
    x = (centred @ v).to(torch.float64)                                # (N, k) coefficients
    sigma_x = x.std(dim=0)                                             # std of each coefficient
    u = torch.linalg.lstsq(x, z - z.mean(dim=0)).solution.T            # (d, k): z ~ U x
    out = []
    for i in range(k):
        vector = _signed(u[:, i] * sigma_x[i]).float()
        out.append(Direction(f"GANSpace {i + 1}", PRINCIPAL,
                             f"GANSpace: PCA of the generator's first layer over {n} sampled z, regressed to z",
                             vector, spread(z.float(), vector)))
    return out


# -- directions from labels, groups and analogies -------------------------------------------------------------------

def mean_difference(codes_a: Tensor, codes_b: Tensor) -> Tensor:
    """mean(B) - mean(A): the step from group A's centre to group B's."""
    if codes_a.shape[0] < 1 or codes_b.shape[0] < 1:
        raise ValueError("each group needs at least one code")
    return (codes_b.to(torch.float64).mean(dim=0) - codes_a.to(torch.float64).mean(dim=0)).float()


def class_mean_direction(codes: Tensor, labels: Tensor, a: int, b: int,
                         names: Sequence[str] = ()) -> Direction:
    """From class a's mean code to class b's, over codes (N, d) with labels (N,); sigma from all the codes."""
    name_a = names[a] if a < len(names) else f"class {a}"
    name_b = names[b] if b < len(names) else f"class {b}"
    in_a, in_b = labels == a, labels == b
    if a == b or not bool(in_a.any()) or not bool(in_b.any()):
        raise ValueError(f"a class direction needs two different classes with codes; {name_a} → {name_b} has not")
    vector = mean_difference(codes[in_a], codes[in_b])
    return Direction(f"{name_a} → {name_b}", ATTRIBUTE,
                     f"class means of {int(in_a.sum())} and {int(in_b.sum())} labelled codes", vector,
                     spread(codes, vector))


def factor_directions(codes: Tensor, factors: Tensor, names: Sequence[str],
                      values: Sequence[Sequence[str]]) -> list[Direction]:
    """One direction per known factor (shapes: shape, colour, size, x, y): from the mean code of the pictures with
    the factor's first value to that of its last (small → large, left → right); codes (N, d), factors (N, F)."""
    out = []
    for f, (name, vals) in enumerate(zip(names, values)):
        first, last = factors[:, f] == 0, factors[:, f] == len(vals) - 1
        if not bool(first.any()) or not bool(last.any()):
            continue
        vector = mean_difference(codes[first], codes[last])
        out.append(Direction(f"{name}: {vals[0]} → {vals[-1]}", ATTRIBUTE,
                             f"factor means of {int(first.sum())} and {int(last.sum())} labelled codes", vector,
                             spread(codes, vector)))
    return out


def group_direction(codes_a: Tensor, codes_b: Tensor, name: str = "group A → group B",
                    reference: Tensor | None = None) -> Direction:
    """From the mean of one group of picked codes to another's; sigma from `reference` (all codes) or the groups."""
    vector = mean_difference(codes_a, codes_b)
    ref = reference if reference is not None else torch.cat([codes_a, codes_b])
    return Direction(name, GROUPS, f"two groups of {len(codes_a)} and {len(codes_b)} picked pictures", vector,
                     spread(ref, vector))


def analogy(a: Tensor, b: Tensor, c: Tensor) -> Tensor:
    """a - b + c: c moved by what takes b to a ("this T-shirt, minus T-shirt, plus dress")."""
    return a - b + c


def analogy_triples(labels: Tensor, n: int, seed: int = 0, pool: Tensor | None = None) -> tuple[Tensor, ...]:
    """n seeded triples of test-image indices (a, b of one class, c of another) and c's class, each (n,).

    `pool` (N,) bool keeps the draw to some pictures: a measure of the analogy itself keeps it to pictures the model
    reconstructs as their own class, since a decoder that already draws c as another class cannot be blamed on
    a - b."""
    keep = torch.ones_like(labels, dtype=torch.bool) if pool is None else pool.bool()
    classes = [int(k) for k in labels.unique() if int(((labels == k) & keep).sum()) >= 2]
    if len(classes) < 2:
        raise ValueError("an analogy needs two classes with at least two pictures each")
    g = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(n):
        class_ab, class_c = (classes[i] for i in torch.randperm(len(classes), generator=g)[:2].tolist())
        pool_ab = torch.nonzero((labels == class_ab) & keep)[:, 0]
        pool_c = torch.nonzero((labels == class_c) & keep)[:, 0]
        i, j = pool_ab[torch.randperm(len(pool_ab), generator=g)[:2]].tolist()
        rows.append((i, j, int(pool_c[torch.randint(len(pool_c), (1,), generator=g)]), class_c))
    return tuple(torch.tensor(col) for col in zip(*rows))


def analogy_direction(a: Tensor, b: Tensor, name: str = "a − b", reference: Tensor | None = None) -> Direction:
    """a - b as a direction: moving c by its whole `length` lands on `analogy(a, b, c)`."""
    vector = (a - b).float()
    if float(vector.norm()) <= EPS:
        raise ValueError("a and b are the same code, so a − b points nowhere")
    sigma = spread(reference, vector) if reference is not None else float(vector.norm())
    return Direction(name, ANALOGY, "an analogy: a − b, added to c", vector, sigma)
