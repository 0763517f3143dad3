"""Session files without a window: what is saved reads back the same, and a malformed or hostile file is refused
whole, in one sentence, before anything could use it."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from explorer import session as S
from explorer.views.compare.session import CompareSession
from explorer.views.diffusion.session import DiffusionSession
from explorer.views.interpolate.path import Keyframe
from explorer.views.interpolate.session import InterpolateSession
from explorer.views.map.session import MapSession


def picture(seed: int, shape=(28, 28)) -> np.ndarray:
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def a_session(model: Path | None = None) -> S.Session:
    models = (S.model_ref(model),) if model is not None else (S.ModelRef("/models/vae-2d.safetensors", "a" * 64),)
    return S.Session(models, "interpolate", {
        "map": MapSession(probes=((0.1234567, -2.5), (3.0, 1e-7)), seed=4, recentred_on=12, pinned=7,
                          layers=("grid", "critic"), colour_by="shape", class_index=3, guidance=2.5,
                          view_range=((-3.0, 3.0), (-2.0, 2.5))),
        "interpolate": InterpolateSession((Keyframe(picture(0), "#0 T-shirt"), Keyframe(picture(1), "shoe.png"),
                                           Keyframe(picture(2), "map: probe 1")), "lerp", 12, 0.25, 1, 3.0, 400),
        "diffusion": DiffusionSession(seed=7, sampler="dpm++", steps=20, eta=0.0, samples=4, class_index=None,
                                      guidance=None, branch_seed=1003, forward_index=42, forward_seed=1,
                                      forward_t=500),
        "compare": CompareSession(("/models/ae-2d.safetensors",), 2, (0, 17, 42), 5, True, False),
    })


def good_dict() -> dict:
    return S.session_dict(a_session())


def write(tmp_path: Path, data, name: str = "s.json") -> Path:
    path = tmp_path / name
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def refused(path: Path) -> str:
    with pytest.raises(S.SessionError) as err:
        S.read_session(path)
    message = str(err.value)
    assert message.endswith(".") and "\n" not in message and len(message) < 300, message
    return message


# -- the round trip ----------------------------------------------------------------------------------------------
def test_a_session_reads_back_as_it_was_written_bit_for_bit(tmp_path):
    model = tmp_path / "vae.safetensors"
    model.write_bytes(b"weights")
    saved = a_session(model)
    path = tmp_path / "mine.json"
    S.write_session(path, saved)
    back = S.read_session(path)
    assert S.session_dict(back) == S.session_dict(saved)
    assert back.model == S.ModelRef(str(model), S.content_hash(model)) and back.view == "interpolate"
    assert back.views["map"] == saved.views["map"]
    for a, b in zip(back.views["interpolate"].keyframes, saved.views["interpolate"].keyframes):
        assert a.image.dtype == np.float32 and np.array_equal(a.image, b.image) and a.source == b.source
    assert path.stat().st_size < 20_000                         # small: three 28x28 keyframes and a few numbers
    assert json.loads(path.read_text())["version"] == S.VERSION


def test_a_colour_keyframe_and_an_empty_session_read_back(tmp_path):
    colour = InterpolateSession((Keyframe(picture(3, (32, 32, 3)), "a"), Keyframe(picture(4, (32, 32, 3)), "b")))
    S.write_session(tmp_path / "c.json", S.Session(views={"interpolate": colour}))
    back = S.read_session(tmp_path / "c.json")
    assert back.model is None and back.view is None
    assert np.array_equal(back.views["interpolate"].keyframes[1].image, colour.keyframes[1].image)


def test_saving_replaces_the_file_in_one_step_and_a_failed_save_keeps_the_old_one(tmp_path, monkeypatch):
    path = tmp_path / "s.json"
    S.write_session(path, a_session())
    before = path.read_bytes()

    def broken(self, *args, **kwargs):
        Path(self).write_bytes(b'{"format": "latent-ex')     # half written, then the disk fills
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_text", broken)
    with pytest.raises(OSError):
        S.write_session(path, S.Session(view="map"))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"]      # no temp file left behind


def test_unknown_views_are_ignored_and_unknown_fields_too(tmp_path):
    data = good_dict()
    data["views"]["no-such-view"] = {"anything": [1, 2, 3]}
    data["views"]["map"]["later_field"] = "from a newer app"
    back = S.read_session(write(tmp_path, data))
    assert "no-such-view" not in back.views and back.views["map"].pinned == 7


# -- models: where they are and whether they changed ---------------------------------------------------------------
def test_the_content_hash_of_a_file_and_of_a_folder_of_config_and_weights(tmp_path):
    f = tmp_path / "m.safetensors"
    f.write_bytes(b"abc")
    assert S.content_hash(f) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"  # sha256("abc")
    folder = tmp_path / "diffusers"
    (folder / "unet").mkdir(parents=True)
    (folder / "model_index.json").write_text("{}")
    (folder / "unet" / "config.json").write_text('{"in_channels": 1}')
    (folder / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"w")
    (folder / "README.md").write_text("words")
    first = S.content_hash(folder)
    (folder / "README.md").write_text("other words")                # not config, not weights
    assert S.content_hash(folder) == first
    (folder / "unet" / "config.json").write_text('{"in_channels": 3}')
    assert S.content_hash(folder) != first
    (folder / "unet" / "config.json").write_text('{"in_channels": 1}')
    os.rename(folder / "unet", folder / "net")                       # the same bytes under another name
    assert S.content_hash(folder) != first


def reads_of(monkeypatch) -> list[str]:
    """The files content_hash reads from now on, with no hash known yet in this process."""
    reads: list[str] = []
    real = S._hash_file
    monkeypatch.setattr(S, "_hash_file", lambda path, digest: (reads.append(path.name), real(path, digest)))
    monkeypatch.setattr(S, "_known", {}, raising=False)
    return reads


def written_long_ago(path: Path, data: bytes, seconds_ago: float = 3600) -> None:
    path.write_bytes(data)
    then = time.time() - seconds_ago
    os.utime(path, (then, then))


def test_an_unchanged_model_is_read_once_and_a_changed_one_again(tmp_path, monkeypatch):
    reads = reads_of(monkeypatch)
    model = tmp_path / "m.safetensors"
    written_long_ago(model, b"weights")
    first = S.content_hash(model)
    assert S.content_hash(model) == S.known_hash(model) == first and reads == ["m.safetensors"]
    written_long_ago(model, b"trained", 3000)                       # the same size, another mtime
    assert S.known_hash(model) is None
    second = S.content_hash(model)
    assert second == S.content_hash(model) != first and len(reads) == 2
    written_long_ago(model, b"trained on", 3000)                    # the same mtime, another size
    assert S.content_hash(model) not in (first, second) and len(reads) == 3


def test_a_model_written_a_moment_ago_is_read_each_time(tmp_path, monkeypatch):
    """Within one mtime tick a file can change at the same size (a trainer saving twice): no hash is kept."""
    reads = reads_of(monkeypatch)
    model = tmp_path / "m.safetensors"
    model.write_bytes(b"weights")
    assert S.content_hash(model) == S.content_hash(model) and reads == ["m.safetensors"] * 2
    assert S.known_hash(model) is None


def test_a_folder_is_read_once_until_one_of_its_files_changes(tmp_path, monkeypatch):
    reads = reads_of(monkeypatch)
    folder = tmp_path / "diffusers"
    (folder / "unet").mkdir(parents=True)
    written_long_ago(folder / "model_index.json", b"{}")
    written_long_ago(folder / "unet" / "diffusion_pytorch_model.safetensors", b"w")
    first = S.content_hash(folder)
    assert S.content_hash(folder) == first and len(reads) == 2
    written_long_ago(folder / "model_index.json", b"[]", 60)
    assert S.content_hash(folder) != first and len(reads) == 4


def test_a_missing_or_changed_model_is_one_sentence_and_a_moved_one_is_found(tmp_path):
    model = tmp_path / "a" / "vae-2d.safetensors"
    model.parent.mkdir()
    model.write_bytes(b"weights")
    ref = S.model_ref(model)
    assert S.check_model(ref) is None and S.locate_model(ref) == (str(model), None)
    model.write_bytes(b"trained further")
    path, said = S.locate_model(ref)
    assert path == str(model) and "has changed" in said and said.count(". ") == 0
    moved = tmp_path / "b" / "vae-2d.safetensors"
    moved.parent.mkdir()
    moved.write_bytes(b"weights")
    model.unlink()
    path, said = S.locate_model(ref)
    assert path is None and "missing" in said and said.endswith(".")
    assert S.locate_model(ref, [str(tmp_path / "elsewhere.safetensors"), str(moved)]) == (str(moved), None)
    moved.write_bytes(b"not the same")
    assert S.locate_model(ref, [str(moved)])[0] is None


# -- hostile and malformed files ---------------------------------------------------------------------------------
def with_(change) -> dict:
    data = good_dict()
    change(data)
    return data


def set_in(*keys_and_value):
    *keys, value = keys_and_value

    def change(data):
        node = data
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value
    return change


HOSTILE = {
    "not json": "this is not { json",
    "not text": b"\xff\xfe\x00\x81binary",
    "empty": "",
    "a list": "[1, 2, 3]",
    "another format": with_(set_in("format", "something-else")),
    "a newer version": with_(set_in("version", 99)),
    "version as text": with_(set_in("version", "1")),
    "NaN": json.dumps(good_dict()).replace('"guidance": 2.5', '"guidance": NaN'),
    "Infinity in a probe": json.dumps(good_dict()).replace("0.1234567", "Infinity"),
    "an overflowing number": json.dumps(good_dict()).replace("0.1234567", "1e999"),
    "a 5000-digit integer": json.dumps(good_dict()).replace('"seed": 4', '"seed": ' + "9" * 5000),
    "probes as text": with_(set_in("views", "map", "probes", "0, 0")),
    "a probe of three numbers": with_(set_in("views", "map", "probes", [[0, 0, 0], [1, 1]])),
    "a probe far away": with_(set_in("views", "map", "probes", [[1e300, 0], [1, 1]])),
    "a probe of booleans": with_(set_in("views", "map", "probes", [[True, False], [1, 1]])),
    "a negative pin": with_(set_in("views", "map", "pinned", -1)),
    "a fractional pin": with_(set_in("views", "map", "pinned", 1.5)),
    "a seed as a boolean": with_(set_in("views", "map", "seed", True)),
    "an unknown layer": with_(set_in("views", "map", "layers", ["grid", "exec"])),
    "a huge array": with_(set_in("views", "map", "probes", [[0, 0]] * 100_000)),
    "a long list anywhere": with_(set_in("views", "compare", "extra", list(range(10_000)))),
    "a huge string": with_(set_in("views", "map", "colour_by", "x" * 3_000_000)),
    "a view's part not an object": with_(set_in("views", "map", [1, 2])),
    "views not an object": with_(set_in("views", ["map"])),
    "a view name with a path": with_(set_in("view", "../../etc/passwd")),
    "models not a list": with_(set_in("models", {"path": "x"})),
    "a model with no path": with_(set_in("models", [{"sha256": "a" * 64}])),
    "a model path of zero bytes": with_(set_in("models", [{"path": "a\u0000b", "sha256": "a" * 64}])),
    "a model path as a number": with_(set_in("models", [{"path": 3, "sha256": "a" * 64}])),
    "a hash that is not a hash": with_(set_in("models", [{"path": "/m", "sha256": "__import__('os')"}])),
    "one keyframe": with_(lambda d: d["views"]["interpolate"]["keyframes"].pop() and
                          d["views"]["interpolate"]["keyframes"].pop()),
    "nine keyframes": with_(lambda d: d["views"]["interpolate"]["keyframes"].extend(
        d["views"]["interpolate"]["keyframes"] * 2)),
    "pixels short": with_(lambda d: d["views"]["interpolate"]["keyframes"][0]["picture"].update(
        f32=d["views"]["interpolate"]["keyframes"][0]["picture"]["f32"][:-8])),
    "pixels not base64": with_(lambda d: d["views"]["interpolate"]["keyframes"][0]["picture"].update(
        f32="not base64 at all!")),
    "a picture of a billion pixels": with_(lambda d: d["views"]["interpolate"]["keyframes"][0]["picture"].update(
        shape=[100_000, 10_000])),
    "a picture of no pixels": with_(lambda d: d["views"]["interpolate"]["keyframes"][0]["picture"].update(
        shape=[0, 28])),
    "a picture of 4 channels": with_(lambda d: d["views"]["interpolate"]["keyframes"][0]["picture"].update(
        shape=[14, 14, 4])),
    "pixels out of range": with_(lambda d: d["views"]["interpolate"]["keyframes"][0].update(
        picture=S.encode_picture(np.full((28, 28), 2.0, np.float32)))),
    "NaN pixels": with_(lambda d: d["views"]["interpolate"]["keyframes"][0].update(
        picture=S.encode_picture(np.full((28, 28), np.nan, np.float32)))),
    "keyframes of two sizes": with_(lambda d: d["views"]["interpolate"]["keyframes"][0].update(
        picture=S.encode_picture(picture(9, (14, 14))))),
    "an unknown sampler": with_(set_in("views", "diffusion", "sampler", "rm -rf")),
    "t beyond the path": with_(set_in("views", "interpolate", "t", 1.5)),
    "hidden columns not paths": with_(set_in("views", "compare", "hidden", [{"path": 1}])),
    "test images as text": with_(set_in("views", "compare", "indices", ["0"])),
    "deep nesting": '{"format": "latent-explorer-session", "version": 1, "views": {"map": {"x": '
                    + "[" * 100_000 + "]" * 100_000 + "}}}",
    "nesting just too deep": '{"format": "latent-explorer-session", "version": 1, "views": {"map": {"x": '
                             + "[" * 20 + "]" * 20 + "}}}",
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_malformed_or_hostile_file_is_refused_in_one_sentence(tmp_path, case):
    message = refused(write(tmp_path, HOSTILE[case]))
    assert message.startswith("s.json")
    assert "Traceback" not in message


def test_a_file_over_the_cap_is_refused_after_reading_no_more_than_the_cap(tmp_path, monkeypatch):
    path = tmp_path / "huge.json"
    with open(path, "wb") as f:                          # a 1 GB file, sparse: it takes no disk
        f.write(b'{"format": "latent-explorer-session", "version": 1, "views": {"map": {"colour_by": "')
        f.truncate(1 << 30)
    read = []
    real_open = open

    class Counting:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def read(self, n=-1):
            data = self.f.read(n)
            read.append(len(data))
            return data

    monkeypatch.setattr("builtins.open", lambda p, mode="r", *a, **k: Counting(real_open(p, mode, *a, **k))
                        if str(p) == str(path) else real_open(p, mode, *a, **k))
    assert "larger than a session can be" in refused(path)
    assert sum(read) <= S.MAX_BYTES + 1


def test_a_path_that_leads_nowhere_is_refused_in_one_sentence(tmp_path):
    assert "no session file" in refused(tmp_path / "nowhere" / "s.json")
    assert "no session file" in refused(tmp_path)                 # a folder


def test_the_nesting_a_session_needs_is_within_the_cap():
    text = S.dumps(a_session())
    assert S.parse_session(text).views["map"].probes[0] == (0.1234567, -2.5)


def test_a_session_too_large_to_open_is_not_saved(tmp_path, monkeypatch):
    monkeypatch.setattr(S, "MAX_BYTES", 2000)
    with pytest.raises(S.SessionError, match="more than"):
        S.write_session(tmp_path / "s.json", a_session())
    assert not (tmp_path / "s.json").exists()


def test_no_view_module_is_imported_by_a_name_the_file_gives():
    assert S.view_module("os") is None and S.view_module("base") is None
    assert S.view_module("map").__name__ == "explorer.views.map.session"


def test_a_dropped_json_file_is_a_session_unless_it_is_a_diffusers_model_index(tmp_path):
    (tmp_path / "mine.json").write_text("{}")
    (tmp_path / "model_index.json").write_text("{}")
    assert S.is_session_file(tmp_path / "mine.json")
    assert not S.is_session_file(tmp_path / "model_index.json") and not S.is_session_file(tmp_path / "gone.json")


def test_the_command_line_takes_a_session_file():
    from explorer.app import parse_args

    assert parse_args(["mine.json"]).session == "mine.json"
    assert parse_args(["--view", "map"]).session is None


def test_a_relative_model_path_is_read_from_the_session_files_folder(tmp_path):
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "m.safetensors").write_bytes(b"w")
    data = good_dict()
    digest = S.content_hash(tmp_path / "weights" / "m.safetensors")
    data["models"] = [{"path": "weights/m.safetensors", "sha256": digest}]
    ref = S.read_session(write(tmp_path, data)).model
    assert ref.path == str(tmp_path / "weights" / "m.safetensors") and S.check_model(ref) is None
