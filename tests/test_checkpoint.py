"""Checkpoints: a bit-exact round trip for every family, a typed one-line error for every kind of bad file,
pickles refused without ever running their code, and fuzzed bytes that never escape as anything else."""
from __future__ import annotations

import json
import pickle
import stat
import struct
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

import models
from models import checkpoint as ck
from models.registry import FAMILIES

FAMILY_NAMES = sorted(FAMILIES)


# ---------------------------------------------------------------------------------------------------------------
# helpers that build files by hand

def split_file(path: Path) -> tuple[dict, bytes]:
    """(header JSON, tensor bytes) of a safetensors file."""
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def join_file(path: Path, header: dict, data: bytes) -> Path:
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)
    return path


def rewrite_meta(src: Path, dst: Path, **changes) -> Path:
    """Copy a checkpoint with fields of its latent_explorer metadata changed (None deletes a field)."""
    header, data = split_file(src)
    meta = json.loads(header["__metadata__"][ck.METADATA_KEY])
    for key, value in changes.items():
        if value is None:
            meta.pop(key, None)
        else:
            meta[key] = value
    header["__metadata__"][ck.METADATA_KEY] = json.dumps(meta)
    return join_file(dst, header, data)


def meta_of(path: Path) -> dict:
    header, _ = split_file(path)
    return json.loads(header["__metadata__"][ck.METADATA_KEY])


@pytest.fixture
def tiny_ae(tiny_config):
    torch.manual_seed(0)
    return models.build("ae", tiny_config("ae"))


@pytest.fixture
def saved(tmp_path, tiny_ae) -> Path:
    path = tmp_path / "ae.safetensors"
    ck.save(tiny_ae, path, dataset="fashion-mnist", train_steps=7, metrics={"recon": 123.5},
            training={"device": "cpu", "seconds": 1.5})
    return path


def assert_one_sentence(err: ck.CheckpointError, path: Path) -> None:
    text = str(err)
    assert "\n" not in text and text.strip() == text and len(text) < 400
    assert path.name in text


# ---------------------------------------------------------------------------------------------------------------
# round trip

@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_round_trip_is_bit_exact_for_every_family(family, tmp_path, tiny_config):
    torch.manual_seed(1)
    model = models.build(family, tiny_config(family))
    with torch.no_grad():      # make buffers (e.g. BatchNorm statistics) differ from their defaults
        for buf in model.buffers():
            if buf.is_floating_point():
                buf.copy_(torch.rand_like(buf) + 0.5)
    path = tmp_path / f"{family}.safetensors"
    ck.save(model, path, dataset="fashion-mnist", train_steps=3, metrics={"loss": 1.25})

    loaded = ck.load(path, device="cpu")
    assert type(loaded) is type(model) and loaded.config == model.config
    assert not loaded.training
    want, got = model.state_dict(), loaded.state_dict()
    assert list(want) == list(got)
    for key in want:
        assert got[key].dtype == want[key].dtype
        assert torch.equal(got[key], want[key]), key
    if models.core.DECODE in model.capabilities:
        model.eval()
        z = torch.randn(4, model.latent_dim, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            assert torch.equal(model.decode(z), loaded.decode(z))


def test_saved_header_holds_the_documented_metadata(saved, tiny_ae):
    meta = meta_of(saved)
    assert meta["format_version"] == ck.FORMAT_VERSION
    assert meta["family"] == "ae"
    assert meta["config"] == {"latent_dim": 2, "hidden": [16], "image_shape": [1, 28, 28]}
    assert meta["image_shape"] == [1, 28, 28]
    assert meta["dataset"] == "fashion-mnist" and meta["train_steps"] == 7
    assert meta["metrics"] == {"recon": 123.5}
    assert meta["training"] == {"device": "cpu", "seconds": 1.5}


def test_read_metadata_reports_what_was_saved(saved):
    meta = ck.read_metadata(saved)
    assert meta.family == "ae" and meta.title == FAMILIES["ae"].title
    assert meta.config == FAMILIES["ae"].config_cls(latent_dim=2, hidden=(16,))
    assert meta.image_shape == (1, 28, 28) and meta.train_steps == 7 and meta.dataset == "fashion-mnist"
    assert meta.metrics == {"recon": 123.5}
    assert meta.n_parameters == sum(p.numel() for p in models.build("ae", meta.config).parameters())
    with pytest.raises(Exception):
        meta.family = "vae"     # frozen


class CountingFile:
    """A file opened for reading that adds every byte it hands out to `counts[name]`."""

    def __init__(self, f, counts: dict[str, int], name: str) -> None:
        self._f, self._counts, self._name = f, counts, name

    def _count(self, n: int) -> None:
        self._counts[self._name] = self._counts.get(self._name, 0) + n

    def read(self, *args):
        data = self._f.read(*args)
        self._count(len(data))
        return data

    def read1(self, *args):
        data = self._f.read1(*args)
        self._count(len(data))
        return data

    def readline(self, *args):
        data = self._f.readline(*args)
        self._count(len(data))
        return data

    def readinto(self, buffer):
        n = self._f.readinto(buffer)
        self._count(n or 0)
        return n

    def readinto1(self, buffer):
        n = self._f.readinto1(buffer)
        self._count(n or 0)
        return n

    def readall(self):
        data = self._f.readall()
        self._count(len(data))
        return data

    def readlines(self, *args):
        lines = self._f.readlines(*args)
        self._count(sum(map(len, lines)))
        return lines

    def __iter__(self):
        for line in self._f:
            self._count(len(line))
            yield line

    def __enter__(self):
        self._f.__enter__()
        return self

    def __exit__(self, *exc):
        return self._f.__exit__(*exc)

    def __getattr__(self, name):
        return getattr(self._f, name)


def count_bytes_read(monkeypatch) -> dict[str, int]:
    """Count, by file name, the bytes read through every file opened from now on (open, io.open, Path.open,
    Path.read_bytes all go through io.open)."""
    import builtins
    import io

    counts: dict[str, int] = {}
    real_open = io.open

    def counting_open(file, mode="r", *args, **kwargs):
        f = real_open(file, mode, *args, **kwargs)
        if isinstance(file, (str, bytes, Path)) and "r" in mode:
            return CountingFile(f, counts, Path(str(file)).name)
        return f

    monkeypatch.setattr(io, "open", counting_open)
    monkeypatch.setattr(builtins, "open", counting_open)
    return counts


def test_read_metadata_reads_the_header_alone_and_still_sees_a_file_cut_short(saved, tmp_path, monkeypatch):
    """The picker lists every shipped model from its header; the weights are not read until one is opened."""
    whole = saved.read_bytes()
    (n,) = struct.unpack("<Q", whole[:8])
    assert len(whole) > 8 + n + 1000                 # the weights are most of the file
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(whole[:-10])

    counts = count_bytes_read(monkeypatch)
    assert ck.read_metadata(saved).train_steps == 7
    assert 0 < counts[saved.name] <= 8 + n, f"read {counts[saved.name]} bytes of {len(whole)}; the header is {8 + n}"
    with pytest.raises(ck.TruncatedError, match="truncated"):
        ck.read_metadata(cut)
    assert 0 < counts[cut.name] <= 8 + n


def test_load_leaves_the_callers_random_stream_alone(saved):
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    ck.load(saved)
    assert torch.equal(torch.rand(3), expected)


def test_save_is_atomic_and_keeps_the_old_file_on_failure(saved, tiny_ae, monkeypatch):
    before = saved.read_bytes()
    written = []

    def broken(tensors, filename, *args, **kwargs):
        """Writes the first part of a file to the path it is given, then fails, as a full disk does."""
        with open(filename, "wb") as f:
            f.write(before[:len(before) // 3])
        written.append(filename)
        raise OSError("disk full")

    monkeypatch.setattr("safetensors.torch.save_file", broken)
    with pytest.raises(OSError):
        ck.save(tiny_ae, saved, dataset="fashion-mnist", train_steps=8)
    assert written                                     # the stand-in ran and wrote its part
    assert saved.read_bytes() == before
    assert ck.read_metadata(saved).train_steps == 7
    assert sorted(p.name for p in saved.parent.iterdir()) == [saved.name]


def test_a_saved_checkpoint_is_readable_like_any_file(tmp_path, tiny_ae, umask):
    """0666 less the umask, as open() gives, for a new file, an overwritten one and one with figures recorded."""
    path = tmp_path / "ae.safetensors"
    for _ in range(2):
        ck.save(tiny_ae, path, dataset="fashion-mnist", train_steps=7)
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    ck.record_metrics(path, {"quality": {"fid": 1.0}})
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_save_refuses_a_model_with_nan_weights(tmp_path, tiny_ae):
    with torch.no_grad():
        next(tiny_ae.parameters())[0, 0] = float("nan")
    with pytest.raises(ck.NonFiniteError):
        ck.save(tiny_ae, tmp_path / "nan.safetensors", dataset="fashion-mnist", train_steps=1)
    assert not (tmp_path / "nan.safetensors").exists()


def test_recorded_figures_join_the_metrics_and_nothing_else_changes(saved):
    before = ck.load(saved).state_dict()
    meta = ck.record_metrics(saved, {"quality": {"fid": 93.2, "fid_n": 2000}})
    assert meta.metrics == {"recon": 123.5, "quality": {"fid": 93.2, "fid_n": 2000}}
    assert meta.training == {"device": "cpu", "seconds": 1.5} and meta.train_steps == 7
    after = ck.load(saved).state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    ck.record_metrics(saved, {"quality": {"fid": 90.0, "fid_n": 2000}})     # measured again: replaced
    assert ck.read_metadata(saved).metrics["quality"]["fid"] == 90.0
    assert sorted(p.name for p in saved.parent.iterdir()) == [saved.name]   # no temp file left behind


def test_figures_measured_on_older_weights_are_refused(saved, tiny_ae):
    ck.save(tiny_ae, saved, dataset="fashion-mnist", train_steps=9)       # training saved again meanwhile
    before = saved.read_bytes()
    with pytest.raises(ck.StaleFiguresError, match="step 7 then, 9 now"):
        ck.record_metrics(saved, {"quality": {"fid": 1.0}}, measured_at_step=7)
    assert saved.read_bytes() == before


def test_recording_into_a_broken_file_says_so_and_leaves_it_alone(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ck.CheckpointError):
        ck.record_metrics(bad, {"fid": 1.0})
    assert bad.read_bytes() == b"not a checkpoint"


# ---------------------------------------------------------------------------------------------------------------
# every bad kind gets its typed error

def _truncate(src: Path, dst: Path, keep) -> Path:
    raw = src.read_bytes()
    dst.write_bytes(raw[:keep(raw)])
    return dst


def _header_edit(edit):
    def make(src: Path, dst: Path) -> Path:
        header, data = split_file(src)
        data = edit(header, data)
        return join_file(dst, header, data)
    return make


def _first_tensor(header: dict) -> str:
    return min((k for k in header if k != "__metadata__"), key=lambda k: header[k]["data_offsets"][0])


def _grow_shape(header, data):
    header[_first_tensor(header)]["shape"][0] += 1
    return data


def _overlap(header, data):
    keys = sorted((k for k in header if k != "__metadata__"), key=lambda k: header[k]["data_offsets"][0])
    header[keys[1]]["data_offsets"] = header[keys[0]]["data_offsets"]
    return data


def _bad_dtype(header, data):
    header[_first_tensor(header)]["dtype"] = "F33"
    return data


def _dtype_size_lie(header, data):
    header[_first_tensor(header)]["dtype"] = "F64"
    return data


def _trailing(header, data):
    return data + b"\0" * 16


def _rename_tensor(header, data):
    key = _first_tensor(header)
    header["renamed." + key] = header.pop(key)
    return data


def _nan_file(src: Path, dst: Path, value: float) -> Path:
    model = ck.load(src)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    next(iter(state.values())).view(-1)[3] = value
    header, _ = split_file(src)
    save_file(state, str(dst), metadata=header["__metadata__"])
    return dst


BAD_FILES = {
    "missing": (ck.NotAFileError, lambda src, dst: dst),
    "directory": (ck.NotAFileError, lambda src, dst: (dst.mkdir(), dst)[1]),
    "text": (ck.NotSafetensorsError, lambda src, dst: (dst.write_text("just some notes\n" * 4), dst)[1]),
    "png": (ck.NotSafetensorsError, lambda src, dst: (dst.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64), dst)[1]),
    "header-not-json": (ck.NotSafetensorsError,
                        lambda src, dst: (dst.write_bytes(struct.pack("<Q", 6) + b"{nope}" + b"\0" * 8), dst)[1]),
    "header-nested-deep": (ck.NotSafetensorsError, lambda src, dst: (dst.write_bytes(
        struct.pack("<Q", 100_005) + b'{"a":' + b"[" * 100_000), dst)[1]),
    "empty": (ck.TruncatedError, lambda src, dst: (dst.write_bytes(b""), dst)[1]),
    "cut-in-length": (ck.TruncatedError, lambda src, dst: _truncate(src, dst, lambda raw: 5)),
    "cut-in-header": (ck.TruncatedError, lambda src, dst: _truncate(src, dst, lambda raw: 40)),
    "cut-in-data": (ck.TruncatedError, lambda src, dst: _truncate(src, dst, lambda raw: len(raw) - 100)),
    "cut-last-byte": (ck.TruncatedError, lambda src, dst: _truncate(src, dst, lambda raw: len(raw) - 1)),
    "shape-lies": (ck.HeaderMismatchError, _header_edit(_grow_shape)),
    "offsets-overlap": (ck.HeaderMismatchError, _header_edit(_overlap)),
    "unknown-dtype": (ck.HeaderMismatchError, _header_edit(_bad_dtype)),
    "dtype-size-lies": (ck.HeaderMismatchError, _header_edit(_dtype_size_lie)),
    "trailing-bytes": (ck.HeaderMismatchError, _header_edit(_trailing)),
    "unknown-family": (ck.UnknownFamilyError, lambda src, dst: rewrite_meta(src, dst, family="transformer")),
    "config-missing": (ck.BadConfigError, lambda src, dst: rewrite_meta(src, dst, config=None)),
    "config-wrong-type": (ck.BadConfigError, lambda src, dst: rewrite_meta(
        src, dst, config={"latent_dim": "two", "hidden": [16]})),
    "config-unknown-field": (ck.BadConfigError, lambda src, dst: rewrite_meta(
        src, dst, config={"latent_dim": 2, "hidden": [16], "dropout": 0.5})),
    "config-invalid-value": (ck.BadConfigError, lambda src, dst: rewrite_meta(
        src, dst, config={"latent_dim": 0, "hidden": [16]})),
    "image-shape-disagrees": (ck.BadConfigError, lambda src, dst: rewrite_meta(src, dst, image_shape=[3, 32, 32])),
    "no-train-steps": (ck.BadConfigError, lambda src, dst: rewrite_meta(src, dst, train_steps=None)),
    "no-metadata": (ck.BadConfigError, lambda src, dst: (save_file({"w": torch.zeros(2)}, str(dst)), dst)[1]),
    "metadata-not-json": (ck.BadConfigError, lambda src, dst: (
        save_file({"w": torch.zeros(2)}, str(dst), metadata={ck.METADATA_KEY: "{oops"}), dst)[1]),
    "metadata-nested-deep": (ck.BadConfigError, lambda src, dst: (
        save_file({"w": torch.zeros(2)}, str(dst), metadata={ck.METADATA_KEY: "[" * 100_000}), dst)[1]),
    "shapes-differ-from-config": (ck.TensorMismatchError, lambda src, dst: rewrite_meta(
        src, dst, config={"latent_dim": 3, "hidden": [16], "image_shape": [1, 28, 28]})),
    "tensor-renamed": (ck.TensorMismatchError, _header_edit(_rename_tensor)),
    "newer-format": (ck.NewerFormatError, lambda src, dst: rewrite_meta(src, dst, format_version=99)),
    "nan-weights": (ck.NonFiniteError, lambda src, dst: _nan_file(src, dst, float("nan"))),
    "inf-weights": (ck.NonFiniteError, lambda src, dst: _nan_file(src, dst, float("-inf"))),
    "torch-save": (ck.PickleRefusedError, lambda src, dst: (torch.save({"w": torch.zeros(2)}, dst), dst)[1]),
}


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_every_bad_file_gets_its_typed_one_line_error(kind, saved, tmp_path):
    error_type, make = BAD_FILES[kind]
    bad = make(saved, tmp_path / f"bad-{kind}.safetensors")
    for read in (ck.load, ck.read_metadata):
        if read is ck.read_metadata and error_type in (ck.TensorMismatchError, ck.NonFiniteError):
            continue        # read_metadata looks at the header only, not at tensor names or values
        with pytest.raises(error_type) as info:
            read(bad)
        assert type(info.value) is error_type, f"{kind}: {type(info.value).__name__}: {info.value}"
        assert_one_sentence(info.value, bad)


def test_a_training_state_is_not_taken_for_a_model(tmp_path, tiny_ae):
    from models import train

    state = tmp_path / "run.state.safetensors"
    train.save_trainer(train.new_trainer(tiny_ae, train.TrainSettings()), state)
    with pytest.raises(ck.BadConfigError, match="training state.*--resume"):
        ck.load(state)


def test_a_lying_config_is_caught_before_any_memory_is_spent(saved, tmp_path):
    """A header claiming a huge network is refused from its numbers: no allocation, just the error."""
    bad = rewrite_meta(saved, tmp_path / "huge.safetensors",
                       config={"latent_dim": 2, "hidden": [2_000_000_000], "image_shape": [1, 28, 28]})
    with pytest.raises(ck.TooLargeError, match="2,000,000,000 wide"):
        ck.load(bad)


# ---------------------------------------------------------------------------------------------------------------
# pickles

class Booby:
    """Unpickling this creates a marker file: proof that pickle code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _evil_files(tmp_path: Path) -> list[Path]:
    marker = tmp_path / "pwned"
    payload = {"encoder.0.weight": Booby(marker)}
    files = []
    for suffix in (".pt", ".pth", ".ckpt", ".safetensors", ""):
        torch_zip = tmp_path / f"zip{suffix}"
        torch.save(payload, torch_zip)
        files.append(torch_zip)
        for protocol in (0, 2, 5):
            raw = tmp_path / f"p{protocol}{suffix}"
            raw.write_bytes(pickle.dumps(payload, protocol=protocol))
            files.append(raw)
    legacy = tmp_path / "legacy.pth"
    torch.save(payload, legacy, _use_new_zipfile_serialization=False)
    files.append(legacy)
    return files


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
def test_a_pickle_never_runs_whatever_its_name(tmp_path, tiny_config):
    marker = tmp_path / "pwned"
    for path in _evil_files(tmp_path):
        with pytest.raises(ck.PickleRefusedError) as info:
            ck.load(path)
        assert "python -m models import" in str(info.value), path.name
        assert_one_sentence(info.value, path)
        with pytest.raises(ck.PickleRefusedError):
            ck.read_metadata(path)
        with pytest.raises(ck.CheckpointError):
            ck.import_state_dict(path, "ae", tiny_config("ae"))
        assert not marker.exists(), f"pickle code ran while reading {path.name}"


def test_import_state_dict_is_the_explicit_way_in(tmp_path, tiny_ae, tiny_config):
    plain = tmp_path / "weights.pt"
    torch.save(tiny_ae.state_dict(), plain)
    with pytest.raises(ck.PickleRefusedError):
        ck.load(plain)
    imported = ck.import_state_dict(plain, "ae", tiny_config("ae"))
    for key, value in tiny_ae.state_dict().items():
        assert torch.equal(imported.state_dict()[key], value)
    nested = tmp_path / "lightning.ckpt"
    torch.save({"state_dict": tiny_ae.state_dict(), "epoch": 3}, nested)
    assert torch.equal(ck.import_state_dict(nested, "ae", tiny_config("ae")).decoder[-2].bias,
                       tiny_ae.decoder[-2].bias)
    with pytest.raises(ck.TensorMismatchError):
        ck.import_state_dict(plain, "ae", {"latent_dim": 5, "hidden": [16]})
    with pytest.raises(ck.UnknownFamilyError):
        ck.import_state_dict(plain, "nonesuch", {})
    with pytest.raises(ck.BadConfigError):
        ck.import_state_dict(plain, "ae", {"latent_dim": "x"})


# ---------------------------------------------------------------------------------------------------------------
# fuzz: whatever the bytes, only CheckpointError escapes

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _only_checkpoint_errors(path: Path) -> None:
    for read in (ck.read_metadata, ck.load):
        try:
            read(path)
        except ck.CheckpointError as err:
            assert str(err) and "\n" not in str(err)


@FUZZ
@given(data=st.binary(max_size=2048))
def test_fuzz_random_bytes(tmp_path, data):
    path = tmp_path / "fuzz.safetensors"
    path.write_bytes(data)
    _only_checkpoint_errors(path)


@FUZZ
@given(edits=st.lists(st.tuples(st.sampled_from(["set", "insert", "delete"]), st.floats(0, 1), st.integers(0, 255)),
                      min_size=1, max_size=4),
       in_header=st.booleans(), cut=st.none() | st.floats(0, 1))
def test_fuzz_corrupted_checkpoint(tmp_path, saved, edits, in_header, cut):
    raw = bytearray(saved.read_bytes())
    (n,) = struct.unpack("<Q", raw[:8])
    for op, where, byte in edits:
        span = 8 + n if in_header else len(raw)
        i = min(int(where * span), len(raw) - 1)
        if op == "set":
            raw[i] = byte
        elif op == "insert":
            raw.insert(i, byte)
        else:
            del raw[i]
    if cut is not None:
        raw = raw[:int(cut * len(raw))]
    path = tmp_path / "corrupt.safetensors"
    path.write_bytes(bytes(raw))
    _only_checkpoint_errors(path)


json_values = st.recursive(st.none() | st.booleans() | st.integers(-3, 2 ** 40) | st.floats() | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                       max_size=4), max_leaves=12)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(meta=st.fixed_dictionaries({}, optional={
    "format_version": json_values | st.integers(0, 3), "family": json_values | st.sampled_from(FAMILY_NAMES),
    "config": json_values, "image_shape": json_values | st.just([1, 28, 28]), "dataset": json_values,
    "train_steps": json_values, "metrics": json_values, "training": json_values}),
    tensors=st.dictionaries(st.text(max_size=6), st.fixed_dictionaries(
        {"dtype": st.sampled_from(["F32", "I64", "U8", "XX"]), "shape": json_values,
         "data_offsets": st.lists(st.integers(-2, 64), max_size=3)}), max_size=3))
def test_fuzz_well_framed_headers_with_random_content(tmp_path, meta, tensors):
    header = dict(tensors)
    header["__metadata__"] = {ck.METADATA_KEY: json.dumps(meta)}
    path = join_file(tmp_path / "framed.safetensors", header, b"\0" * 64)
    _only_checkpoint_errors(path)


# ---------------------------------------------------------------------------------------------------------------
# where shipped weights are found

def test_weights_dir_prefers_the_flag_then_the_environment_then_the_repo(tmp_path, monkeypatch):
    from models.weights import WEIGHTS_ENV, weights_dir

    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    repo = Path(__file__).resolve().parent.parent / "weights"
    assert weights_dir() == repo
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path / "env"))
    assert weights_dir() == tmp_path / "env"
    assert weights_dir(str(tmp_path / "flag")) == tmp_path / "flag"


def test_shipped_checkpoints_lists_models_sorted_without_training_states(tmp_path, saved):
    from models.weights import shipped_checkpoints

    for name in ("vae-2d.safetensors", "ae-2d.safetensors", "ae-2d.state.safetensors", "notes.txt"):
        (tmp_path / name).write_bytes(saved.read_bytes())
    names = [p.name for p in shipped_checkpoints(tmp_path)]
    assert names == ["ae-2d.safetensors", "ae.safetensors", "vae-2d.safetensors"]
    assert shipped_checkpoints(tmp_path / "nowhere") == []
