"""The Directions tab's requests: find a model's directions, make new ones, find a picture's code, and decode a
picture moved along up to four directions (live, like a probe drag), or along each direction from -3 sigma to
+3 sigma with the classifier's label at every step.

The math is models.directions; this module turns its torch results into numpy (`DirectionData`) and back. An
encoder family's directions come from its encoded test set (map.encode_test_set, cached per model and on disk);
a generator's are GANSpace's, cached on disk per checkpoint content hash (result_cache, "ganspace" entries), so
the second time a GAN is opened they cost a file read. torch is imported inside the jobs, so the UI can import
this module to build requests and to read `DirectionData`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from models.catalog import DENOISE, ENCODE, data_classes, data_factors

from ..errors import UserError
from ..job import EngineContext, Job, from_images, to_image
from ..result_cache import checkpoint_digest, entry_path, load_arrays, save_arrays
from .common import Decoded, DecodeProbe, NamedDecode, Stopwatch, classify, require_model, test_images
from .map import encode_test_set

PRINCIPAL_K = 8                 # principal directions listed per model
STRIP_AMOUNTS = np.linspace(-3.0, 3.0, 13).astype(np.float32)    # the strip and the label line: every 0.5 sigma
REFERENCE_SAMPLES = 2000        # prior draws that give a generator's directions their sigma
NO_LATENT_IMAGES = 2000         # test images shown for a model without a small code (a diffusion model)
ANALOGY, ATTRIBUTE, GROUPS, PRINCIPAL = "analogy", "attribute", "groups", "principal"


@dataclass(frozen=True, eq=False)
class DirectionData:
    """A direction in plain values (models.directions.Direction as numpy): what the UI lists, moves along and
    keeps in a session."""

    name: str
    kind: str
    source: str
    vector: np.ndarray            # (d,) float32
    sigma: float

    @property
    def length(self) -> float:
        """|vector| / sigma: the slider value that adds the whole vector."""
        return float(np.linalg.norm(self.vector)) / self.sigma

    @property
    def unit(self) -> np.ndarray:
        return self.vector / max(float(np.linalg.norm(self.vector)), 1e-12)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "source": self.source,
                "vector": [float(v) for v in self.vector], "sigma": float(self.sigma)}


def as_data(d) -> DirectionData:
    """A models.directions.Direction as numpy."""
    return DirectionData(d.name, d.kind, d.source, d.vector.detach().float().cpu().numpy().astype(np.float32),
                         float(d.sigma))


def as_direction(d: DirectionData):
    """DirectionData back to a models.directions.Direction (ValueError for one that is not a direction)."""
    import torch
    from models.directions import Direction

    return Direction(d.name, d.kind, d.source, torch.from_numpy(np.asarray(d.vector, np.float32).copy()),
                     float(d.sigma))


def moved_codes(z: np.ndarray, directions: tuple[DirectionData, ...], amounts) -> Any:
    """models.directions.move of z (d,) or (B, d), as a float tensor on the CPU."""
    import torch
    from models.directions import move

    base = torch.from_numpy(np.ascontiguousarray(z, dtype=np.float32))
    return move(base, [as_direction(d) for d in directions], [float(a) for a in amounts])


def has_encoder(ctx: EngineContext) -> bool:
    return ENCODE in require_model(ctx).capabilities


def reference_codes(ctx: EngineContext, dataset: str, limit: int | None) -> Any:
    """The codes sigma is measured over: the encoded test set, or (a generator) REFERENCE_SAMPLES prior draws."""
    import torch

    if has_encoder(ctx):
        return torch.from_numpy(encode_test_set(ctx, dataset, limit)["codes"])
    model = require_model(ctx)
    with torch.no_grad():
        return model.prior(REFERENCE_SAMPLES, torch.Generator(device=ctx.device).manual_seed(0)).float().cpu()


def ganspace_cached(ctx: EngineContext, k: int, n: int, seed: int) -> list[DirectionData]:
    """GANSpace's directions of the job's model: from ctx.cache, else the on-disk cache keyed by the checkpoint's
    bytes, else computed (about a second for the shipped GAN) and kept in both."""
    import torch
    from models.directions import ganspace

    key = ("directions:ganspace", k, n, seed)
    if key in ctx.cache:
        return ctx.cache[key]
    digest = checkpoint_digest(ctx.model_path)
    stored = entry_path("ganspace", digest, k, n, seed) if digest else None
    arrays = load_arrays(stored) if stored is not None else None
    source = f"GANSpace: PCA of the generator's first layer over {n} sampled z, regressed to z"
    if arrays is not None and {"vectors", "sigmas"} <= set(arrays) and len(arrays["vectors"]) == len(arrays["sigmas"]):
        dirs = [DirectionData(f"GANSpace {i + 1}", PRINCIPAL, source, v.astype(np.float32), float(s))
                for i, (v, s) in enumerate(zip(arrays["vectors"], arrays["sigmas"]))]
    else:
        model = require_model(ctx)
        dirs = [as_data(d) for d in ganspace(model, k=k, n=n,
                                             generator=torch.Generator(device=ctx.device).manual_seed(seed))]
        if stored is not None:
            save_arrays(stored, {"vectors": np.stack([d.vector for d in dirs]),
                                 "sigmas": np.array([d.sigma for d in dirs], np.float32)})
    ctx.cache[key] = dirs
    return dirs


@dataclass(frozen=True, eq=False)
class FindDirections(Job):
    """A model's own directions and what to pick pictures from: for an encoder family the PCA of its encoded
    test set (and for a data set with known factors, one per factor), with the test images and labels; for a
    generator GANSpace's directions and no test images (it has no encoder to place them); for a diffusion model
    (no small code) no directions, only its data set's test images ("latent": False)."""

    dataset: str = "fashion-mnist"
    limit: int | None = None
    k: int = PRINCIPAL_K
    ganspace_n: int = 4000
    seed: int = 0

    @property
    def key(self) -> str:
        return "directions:find"

    @property
    def activity(self) -> str:
        return "finding the model's directions"

    def run(self, ctx: EngineContext) -> dict[str, Any]:
        import torch
        from models.directions import factor_directions, principal_directions

        clock = Stopwatch(ctx.device)
        if DENOISE in require_model(ctx).capabilities:     # no small code: only its pictures, to show why
            data = test_images(ctx, self.dataset, ctx.model.image_shape)
            n = min(int(self.limit or NO_LATENT_IMAGES), NO_LATENT_IMAGES, len(data))
            return {"directions": [], "encoder": False, "latent": False, "ms": 0.0,
                    "images": np.round(to_image(data.images[:n]) * 255.0).astype(np.uint8),
                    "labels": None if data.labels is None else data.labels[:n].numpy().astype(np.int64),
                    "classes": data_classes(self.dataset)}
        if not has_encoder(ctx):
            with clock:
                dirs = ganspace_cached(ctx, self.k, self.ganspace_n, self.seed)
            return {"directions": dirs, "encoder": False, "latent": True, "images": None, "labels": None,
                    "classes": data_classes(self.dataset), "ms": clock.ms}
        with clock:
            enc = encode_test_set(ctx, self.dataset, self.limit)
            codes = torch.from_numpy(enc["codes"])
            dirs = [as_data(d) for d in principal_directions(codes, self.k, f"the {len(codes):,} encoded test images")]
            if enc["factors"] is not None:
                factors = data_factors(self.dataset)
                dirs += [as_data(d) for d in factor_directions(codes, torch.from_numpy(enc["factors"]),
                                                               [f.name for f in factors],
                                                               [f.values for f in factors])]
        return {"directions": dirs, "encoder": True, "latent": True, "images": enc["images"], "labels": enc["labels"],
                "classes": tuple(enc["classes"]), "ms": clock.ms}


@dataclass(frozen=True, eq=False)
class MakeDirection(Job):
    """A new direction: `attribute` from class a's mean code to class b's (over the encoded test set); `groups`
    from the mean of codes_a to that of codes_b; `analogy` a - b (codes_a[0] - codes_b[0]), which carries c to
    a - b + c at its full length."""

    kind: str
    a: int = 0                                  # attribute: the classes, by index
    b: int = 1
    codes_a: np.ndarray | None = None           # groups: (Na, d) and (Nb, d); analogy: a (1, d) and b (1, d)
    codes_b: np.ndarray | None = None
    name: str = ""
    dataset: str = "fashion-mnist"
    limit: int | None = None

    @property
    def key(self) -> str:
        return "directions:make"

    @property
    def activity(self) -> str:
        return f"making a{'n' if self.kind[0] in 'aeiou' else ''} {self.kind} direction"

    def run(self, ctx: EngineContext) -> DirectionData:
        import torch
        from models import directions as D

        reference = reference_codes(ctx, self.dataset, self.limit)
        try:
            if self.kind == ATTRIBUTE:
                if not has_encoder(ctx):
                    raise UserError("a class direction averages the codes of labelled test images, and this model "
                                    "has no encoder to give them codes")
                enc = encode_test_set(ctx, self.dataset, self.limit)
                if enc["labels"] is None:
                    raise UserError("this model's test images have no labels, so there are no classes to average")
                d = D.class_mean_direction(reference, torch.from_numpy(enc["labels"]), int(self.a), int(self.b),
                                           tuple(enc["classes"]))
            elif self.kind in (GROUPS, ANALOGY):
                if self.codes_a is None or self.codes_b is None or not len(self.codes_a) or not len(self.codes_b):
                    raise UserError("pick at least one picture for each side first")
                a = torch.from_numpy(np.atleast_2d(np.asarray(self.codes_a, np.float32)))
                b = torch.from_numpy(np.atleast_2d(np.asarray(self.codes_b, np.float32)))
                if self.kind == GROUPS:
                    d = D.group_direction(a, b, self.name or "group A → group B", reference)
                else:
                    d = D.analogy_direction(a[0], b[0], self.name or "a − b", reference)
            else:
                raise UserError(f"there is no kind of direction called {self.kind!r}")
        except ValueError as err:
            raise UserError(str(err)) from None
        return as_data(d)


@dataclass(frozen=True, eq=False)
class PictureCode(Job):
    """The code of the picture to move: test image `index` (its encoded mu), a picture (H, W[, 3]) in [0, 1]
    read from a file (encoded), or, for a generator, the prior draw of `seed`. Answers {"z", "image", "source",
    "index", "seed"}: the picture shown as the start (the test image or file itself; a generator's G(z))."""

    index: int | None = None
    image: np.ndarray | None = None
    seed: int | None = None
    source: str = ""
    dataset: str = "fashion-mnist"
    limit: int | None = None
    coalesce = True

    @property
    def key(self) -> str:
        return "directions:picture"

    @property
    def activity(self) -> str:
        return "finding the picture's code"

    def run(self, ctx: EngineContext) -> dict[str, Any]:
        import torch

        model = require_model(ctx)
        if self.seed is not None:
            gen = torch.Generator(device=ctx.device).manual_seed(int(self.seed))
            with torch.no_grad():
                z = model.prior(1, gen)
                image = to_image(model.decode(z))[0]
            return {"z": z[0].float().cpu().numpy(), "image": image, "source": self.source or f"sample {self.seed}",
                    "index": None, "seed": int(self.seed)}
        if not has_encoder(ctx):
            raise UserError(f"the {model.family} model has no encoder to find a picture's code: pick a sample by "
                            "its seed instead")
        if self.index is not None:
            enc = encode_test_set(ctx, self.dataset, self.limit)
            if not 0 <= int(self.index) < len(enc["codes"]):
                raise UserError(f"there is no test image {self.index}: there are {len(enc['codes']):,}")
            return {"z": enc["codes"][int(self.index)].copy(),
                    "image": enc["images"][int(self.index)].astype(np.float32) / 255.0,
                    "source": self.source or f"test image {self.index}", "index": int(self.index), "seed": None}
        if self.image is None:
            raise UserError("pick a test image, a file or a seed first")
        x = from_images(np.asarray(self.image, np.float32)[None], model.image_shape).to(ctx.device)
        with torch.no_grad():
            z = model.encode(x).mu
        return {"z": z[0].float().cpu().numpy(), "image": np.asarray(self.image, np.float32),
                "source": self.source or "a picture file", "index": None, "seed": None}


@dataclass(frozen=True, eq=False)
class MovePicture(NamedDecode):
    """z moved by `amounts` (in sigma) along `directions`, decoded as a probe is: pixels first, then the
    verdicts, so a fast slider drag never waits for the judges (keyed "decode:<name>": a newer move replaces a
    waiting one)."""

    directions: tuple[DirectionData, ...] = ()
    amounts: tuple[float, ...] = ()

    def run(self, ctx: EngineContext) -> Iterator[Decoded]:
        z = moved_codes(self.z, self.directions, self.amounts).numpy()
        yield from DecodeProbe(self.name, z, model=self.model).run(ctx)


@dataclass(frozen=True, eq=False)
class AlongDirections(Job):
    """For each direction i: the picture with slider i at every value of `steps` (the others where they are),
    decoded, with the classifier's label and confidence: the strip and each slider's label line.
    Answers {"amounts": (S,), "images": (K, S, H, W[, 3]), "labels": (K, S) or None, "confidences": ...}."""

    z: np.ndarray
    directions: tuple[DirectionData, ...] = ()
    amounts: tuple[float, ...] = ()
    steps: np.ndarray = dataclasses.field(default_factory=lambda: STRIP_AMOUNTS.copy())
    coalesce = True

    @property
    def key(self) -> str:
        return "directions:along"

    @property
    def activity(self) -> str:
        return f"decoding {len(self.directions)} directions from -3σ to +3σ"

    def run(self, ctx: EngineContext) -> dict[str, Any]:
        import torch

        model = require_model(ctx)
        steps = np.asarray(self.steps, np.float32)
        k, s = len(self.directions), len(steps)
        if k == 0:
            return {"amounts": steps, "images": None, "labels": None, "confidences": None, "ms": 0.0}
        grid = np.repeat(np.asarray(self.amounts, np.float32)[None, None, :], s, axis=1).repeat(k, axis=0)
        for i in range(k):
            grid[i, :, i] = steps                                   # (K, S, K): slider i swept, the others kept
        z = torch.stack([moved_codes(self.z, self.directions, row) for row in grid.reshape(k * s, k)])
        clock = Stopwatch(ctx.device)
        with torch.no_grad():
            with clock:
                x = model.decode(z.to(ctx.device))
            labels, confs = classify(ctx, x)
        images = to_image(x)
        shape = images.shape[1:]
        return {"amounts": steps, "images": images.reshape(k, s, *shape),
                "labels": None if labels is None else labels.reshape(k, s),
                "confidences": None if confs is None else confs.reshape(k, s), "ms": clock.ms}


def flip_point(amounts: np.ndarray, labels: np.ndarray, start: float = 0.0) -> tuple[float | None, float | None]:
    """Where the label first differs from its value at `start`, going down and going up: the amounts half-way
    between the last step with the start's label and the first without (None where it never flips)."""
    amounts = np.asarray(amounts, dtype=np.float64)
    labels = np.asarray(labels)
    i0 = int(np.argmin(np.abs(amounts - start)))
    own = labels[i0]
    down = up = None
    for i in range(i0 + 1, len(amounts)):
        if labels[i] != own:
            up = float((amounts[i - 1] + amounts[i]) / 2)
            break
    for i in range(i0 - 1, -1, -1):
        if labels[i] != own:
            down = float((amounts[i + 1] + amounts[i]) / 2)
            break
    return down, up
