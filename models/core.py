"""The one small interface every model family shares, and the registry that names them.

Images cross this interface as float tensors of shape (B, C, H, W) in [0, 1], whatever a family uses inside
(a GAN's tanh range, diffusion's [-1, 1]). Latents are (B, latent_dim). The UI asks `capabilities`, never the
family name, so a new family plugs in without touching the app.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import Any, ClassVar, Iterator

import torch
from torch import Tensor, nn

# What a model can be asked: the names live in the torch-free catalog, so an app can ask without torch.
from .catalog import CRITIC, DECODE, DENOISE, ENCODE, SAMPLE  # noqa: E402,F401


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
    """Base class of everything a checkpoint holds: a config, an image shape and a set of capabilities."""

    family: ClassVar[str]
    capabilities: ClassVar[frozenset[str]]

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


@dataclass(frozen=True)
class Family:
    """A family's name bound to its config class, model class and training recipe."""

    name: str
    config_cls: type
    model_cls: type[Model]
    title: str                      # what the UI calls it, e.g. "Variational autoencoder"


class _Registry(dict):
    """name -> Family. Each family registers itself when its module is imported; the first read imports them all,
    so `FAMILIES` is complete whichever part of the library was imported first, and `import models` stays cheap."""

    _filling = False

    def _fill(self) -> None:
        if not _Registry._filling:
            _Registry._filling = True
            from . import ae, cae, classifier, ddpm, gan, vae, vaegan  # noqa: F401  (each import registers)

    def __getitem__(self, key):
        self._fill()
        return super().__getitem__(key)

    def __contains__(self, key) -> bool:
        self._fill()
        return super().__contains__(key)

    def __iter__(self):
        self._fill()
        return super().__iter__()

    def __len__(self) -> int:
        self._fill()
        return super().__len__()

    def get(self, key, default=None):
        self._fill()
        return super().get(key, default)

    def keys(self):
        self._fill()
        return super().keys()

    def values(self):
        self._fill()
        return super().values()

    def items(self):
        self._fill()
        return super().items()


FAMILIES: dict[str, Family] = _Registry()


def register(name: str, config_cls: type, title: str):
    """Class decorator: `@register("vae", VAEConfig, "Variational autoencoder")`."""

    def wrap(model_cls: type[Model]) -> type[Model]:
        model_cls.family = name
        FAMILIES[name] = Family(name, config_cls, model_cls, title)
        return model_cls

    return wrap


def build(family: str, config: Any) -> Model:
    """A fresh, untrained model of `family` with `config` (an instance or a dict of its fields)."""
    fam = FAMILIES[family]
    if isinstance(config, dict):
        config = config_from_dict(fam.config_cls, config)
    return fam.model_cls(config)


class ConfigError(ValueError):
    """A config dict that does not describe a valid config for its family."""


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
