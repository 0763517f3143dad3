"""The one small interface every model family shares, and what a trainable family offers.

Images cross this interface as float tensors of shape (B, C, H, W) in [0, 1], whatever a family uses inside
(a GAN's tanh range, diffusion's [-1, 1]). Latents are (B, latent_dim). The UI asks `capabilities`, never the
family name, so a new family plugs in without touching the app. The families import this module; it imports
none of them (the registry that names them is models.registry, a leaf).
"""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import Any, ClassVar, Iterable, Iterator, Mapping, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

# What a model can be asked: the names live in the torch-free catalog, so an app can ask without torch.
from .catalog import CRITIC, DECODE, DENOISE, ENCODE, SAMPLE

__all__ = ["CRITIC", "DECODE", "DENOISE", "ENCODE", "SAMPLE", "Adversarial", "ConfigError", "LatentModel", "Model",
           "Posterior", "Trainable", "config_from_dict", "current_names", "iter_batches", "reparameterize"]


@dataclass(frozen=True)
class Posterior:
    """What an encoder says about an image: a point (AE) or a diagonal Gaussian N(mu, diag(sigma^2)) (VAE)."""

    mu: Tensor                      # (B, d)
    logvar: Tensor | None = None    # (B, d); None for a plain autoencoder's point estimate

    @property
    def sigma(self) -> Tensor | None:
        return None if self.logvar is None else torch.exp(0.5 * self.logvar)

    def sample(self, generator: torch.Generator | None = None) -> Tensor:
        """z = mu + sigma * eps, eps ~ N(0, I); a point posterior returns mu."""
        if self.logvar is None:
            return self.mu
        eps = torch.randn(self.mu.shape, generator=generator, device=self.mu.device, dtype=self.mu.dtype)
        return reparameterize(self.mu, self.logvar, eps)


def reparameterize(mu: Tensor, logvar: Tensor, eps: Tensor) -> Tensor:
    """The reparameterisation trick (Kingma & Welling 2014): z = mu + exp(logvar / 2) * eps."""
    return mu + torch.exp(0.5 * logvar) * eps


class Model(nn.Module):
    """Base class of everything a checkpoint holds: a config, an image shape and a set of capabilities.

    `old_prefixes` maps tensor-name prefixes a family once saved under to today's (see `current_names`).
    """

    family: ClassVar[str]
    capabilities: ClassVar[frozenset[str]]     # the family's; one model may have fewer (a GAN without its D)
    old_prefixes: ClassVar[Mapping[str, str]] = {}

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.config.image_shape)  # type: ignore[return-value]

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device


class LatentModel(Model):
    """Base class of every generative family: a Model with a latent space, its prior and a decoder."""

    @property
    def latent_dim(self) -> int:
        return int(self.config.latent_dim)

    def prior(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """z ~ N(0, I), shape (n, latent_dim), drawn on the model's device."""
        return torch.randn((n, self.latent_dim), generator=generator, device=self.device)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Decode n draws from N(0, I). For an AE this is where its holes show."""
        return self.decode(self.prior(n, generator))

    def decode(self, z: Tensor) -> Tensor:  # pragma: no cover - every family overrides
        raise NotImplementedError


def current_names(model_cls: type[Model], names: Mapping[str, Any]) -> dict[str, Any]:
    """A state dict (or any mapping keyed by tensor name) with old names mapped to the family's current ones, so
    a checkpoint or training state written before a rename still loads."""
    renamed = {}
    for key, value in names.items():
        old = next((p for p in model_cls.old_prefixes if key.startswith(p)), None)
        renamed[model_cls.old_prefixes[old] + key[len(old):] if old else key] = value
    return renamed


@runtime_checkable
class Trainable(Protocol):
    """What a family offers to be trained by models.train: its optimizers, and one step on a batch.

    `training_step` reads its loss weights (a VAE's beta, a VAE-GAN's gamma) from `settings` each time, so the
    model holds no training hyperparameters; settings None means the paper's defaults. A family that trains on
    labels (a class-conditional DDPM) says so with a true `conditional` attribute and takes the batch's class
    indices as `y` (B,); models.train passes `y` to no other family, so theirs may leave it out.
    """

    def configure_optimizers(self, settings: Any) -> dict[str, torch.optim.Optimizer]: ...

    def training_step(self, x: Tensor, optimizers: dict[str, torch.optim.Optimizer], generator: torch.Generator,
                      settings: Any = None, y: Tensor | None = None) -> dict[str, float]: ...


@runtime_checkable
class Adversarial(Trainable, Protocol):
    """A trainable family whose step is a game of two players: each half can also be taken alone (slow motion)."""

    def discriminator_step(self, x: Tensor, optimizers: dict[str, torch.optim.Optimizer],
                           generator: torch.Generator, settings: Any = None) -> dict[str, float]: ...

    def generator_step(self, x: Tensor, optimizers: dict[str, torch.optim.Optimizer],
                       generator: torch.Generator, settings: Any = None) -> dict[str, float]: ...


class ConfigError(ValueError):
    """A config dict that does not describe a valid config for its family."""


def quoted(name: str) -> str:
    """A name from an untrusted file, quoted so a message stays one printable line."""
    return f"'{name}'" if name.isprintable() else repr(name)


def few_names(names: Iterable[str], k: int = 3) -> str:
    """The first k names, quoted, and how many more: the list inside a one-sentence message ("'a', 'b' and 4
    more"), which a file of thousands of tensor names must not turn into a page."""
    names = list(names)
    shown = ", ".join(quoted(n) for n in names[:k])
    return shown + (f" and {len(names) - k} more" if len(names) > k else "")


def config_from_dict(cls: type, data: Any) -> Any:
    """Rebuild a frozen config dataclass from JSON, checking every field's name and type.

    JSON has no tuples, so lists become tuples where the field is a tuple. Unknown or missing fields and
    wrong types raise ConfigError with a message that names the field.

    Kept hand-written rather than dacite (tried: `from_dict(cls, data, Config(strict=True, cast=[tuple]))`):
    dacite takes `true` for an int field, keeps the JSON integer 0 as an int in a float field, and names a bad tuple
    or Literal only as 'should be "tuple" instead of value "(1, 'a')" of type "tuple"', so it would need the
    same per-type code around it to keep these messages; cattrs likewise needs a hook per case.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"config must be a JSON object, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"unknown config field(s) for {cls.__name__}: {', '.join(unknown)}")
    hints = typing.get_type_hints(cls)
    values = {}
    for name, field in fields.items():
        if name not in data:
            if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                raise ConfigError(f"config field '{name}' is missing")
            continue
        values[name] = _coerce(name, hints[name], data[name])
    try:
        return cls(**values)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"invalid {cls.__name__}: {err}") from None


def _coerce(name: str, hint: Any, value: Any) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        for option in args:
            try:
                return _coerce(name, option, value)
            except ConfigError:
                continue
        raise ConfigError(f"config field '{name}' has the wrong type: {value!r}")
    if hint is type(None):
        if value is None:
            return None
        raise ConfigError(f"config field '{name}' must be null")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config field '{name}' must be a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(name, args[0], v) for v in value)
        if args and len(args) != len(value):
            raise ConfigError(f"config field '{name}' must have {len(args)} items, got {value!r}")
        return tuple(_coerce(name, a, v) for a, v in zip(args, value)) if args else tuple(value)
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"config field '{name}' must be one of {list(args)}, got {value!r}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"config field '{name}' must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"config field '{name}' must be an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"config field '{name}' must be a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"config field '{name}' must be a string, got {value!r}")
        return value
    return value


def iter_batches(x: Tensor, batch_size: int) -> Iterator[Tensor]:
    """Split a tensor along its first axis; used wherever a big batch is pushed through a model."""
    for start in range(0, x.shape[0], batch_size):
        yield x[start:start + batch_size]
