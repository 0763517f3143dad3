"""Data sets by name: folders of the user's pictures, the generated `shapes`, CIFAR-10 and CelebA through
torchvision's own classes (on tiny files in their on-disk layout, with only the checksum replaced, here), the picture
size and channels, the held-out splits, and the CLI on all of them. No test touches the network (conftest)."""
from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from picture_files import BLUE, RED, make_folder, solid, truncated_png

from models import checkpoint as ck
from models.catalog import (CELEBA_ATTRIBUTES, CIFAR10_CLASSES, DATASET_NAMES, SHAPES_FACTORS, data_classes,
                            data_factors, dataset_info, dataset_name)
from models.cli import main
from models.data import (SHAPES_COLOURS, DataMissingError, LazyImages, load_dataset, shapes_split, shapes_table)

TINY_VAE = ["--config", 'hidden=[16]', "--latent-dim", "2"]
CPU = ["--device", "cpu"]


def cli(*args) -> int:
    return main([str(a) for a in args])


def one_line(capsys, *words: str) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("folder") / "pics"
    make_folder(root)
    return root


# ---------------------------------------------------------------------------------------------------------------
# Names and descriptions (the torch-free catalog)

def test_names_and_descriptions(tmp_path):
    assert DATASET_NAMES == ("fashion-mnist", "mnist", "cifar10", "celeba", "shapes")
    assert dataset_name("CIFAR10") == "cifar10"
    assert dataset_name(f"folder:{tmp_path}/x/../pics") == f"folder:{tmp_path}/pics"
    assert dataset_name("folder:~/p") == "folder:" + os.path.expanduser("~/p")
    for bad in ("imagenet", "folder:", ""):
        with pytest.raises(ValueError):
            dataset_name(bad)
    assert dataset_info("cifar10").image_shape == (3, 32, 32) and data_classes("cifar10") == CIFAR10_CLASSES
    assert dataset_info("celeba").classes is None and len(data_factors("celeba")) == 40
    assert dataset_info("shapes").factor_names == ("shape", "colour", "size", "x", "y")
    assert data_classes("shapes") == ("square", "circle", "triangle") and data_classes("nonsense") == ()
    (tmp_path / "cats").mkdir()
    (tmp_path / "dogs").mkdir()
    info = dataset_info(f"folder:{tmp_path}")
    assert info.classes == ("cats", "dogs") and info.folder == str(tmp_path) and info.image_shape == (3, 64, 64)
    assert info.shape(32, 1) == (1, 32, 32) and dataset_info("mnist").shape(None, 3) == (3, 28, 28)
    with pytest.raises(ValueError, match="32x32"):
        dataset_info("cifar10").shape(64)
    with pytest.raises(ValueError, match="--channels"):
        info.shape(None, 2)


def test_fashion_mnist_is_as_it_was_and_converts_on_request():
    plain = load_dataset("fashion-mnist", "test", subset=8, download=False)
    same = load_dataset("fashion-mnist", "test", subset=8, download=False, image_size=28, channels=1)
    assert isinstance(plain.images, torch.Tensor) and torch.equal(plain.images, same.images)
    assert plain.image_shape == (1, 28, 28) and plain.classes == data_classes("fashion-mnist")
    big = load_dataset("fashion-mnist", "test", subset=8, download=False, image_size=32, channels=3)
    assert big.image_shape == (3, 32, 32) and len(big) == 8 and torch.equal(big.labels, plain.labels)
    x = big.images[:8]
    assert x.shape == (8, 3, 32, 32) and torch.equal(x[:, 0], x[:, 2]) and 0 <= x.min() and x.max() <= 1
    assert torch.allclose(x.mean(dim=(1, 2, 3)), plain.images.mean(dim=(1, 2, 3)), atol=0.03)


# ---------------------------------------------------------------------------------------------------------------
# folder:PATH

def test_a_folder_is_labelled_by_subfolder_with_a_seeded_held_out_part(folder):
    train = load_dataset(f"folder:{folder}", "train", image_size=16)
    test = load_dataset(f"folder:{folder}", "test", image_size=16)
    assert train.name == f"folder:{folder}" and train.classes == ("blue", "red") and train.image_shape == (3, 16, 16)
    assert isinstance(train.images, LazyImages) and train.factors is None
    files = train.images._source.files
    train_files = {files[i] for i in train.images._ids}
    test_files = {files[i] for i in test.images._ids}
    assert not train_files & test_files and len(train_files | test_files) == len(files) == 57
    assert 1 <= len(test) <= 12
    other = load_dataset(f"folder:{folder}", "test", image_size=16, seed=1)
    assert {files[i] for i in other.images._ids} != test_files          # the seed picks the held-out part
    again = load_dataset(f"folder:{folder}", "test", image_size=16)
    assert np.array_equal(again.images._ids, test.images._ids)
    # the pictures match their labels: red ones red, blue ones blue
    for data in (train, test):
        x = data.tensor()
        red = x[:, 0].mean(dim=(1, 2)) - x[:, 2].mean(dim=(1, 2))
        names = [os.path.basename(files[i]) for i in data.images._ids]
        for k, name in enumerate(names):
            if name[0] in "rb" and name[1:4].isdigit():
                assert (red[k] > 0.4) == (data.labels[k] == 1) == (name[0] == "r"), name


def test_a_folder_is_read_lazily(folder, monkeypatch):
    import models.images as images

    calls = []
    real = images.read_picture

    def counting(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(images, "read_picture", counting)
    data = load_dataset(f"folder:{folder}", "train", image_size=20, channels=1, seed=3)
    assert calls == []                                               # indexed, nothing decoded
    x = data.images[torch.tensor([0, 2, 1])]
    assert x.shape == (3, 1, 20, 20) and len(calls) == 3 and x.dtype == torch.float32
    assert data.tensor(5).shape == (5, 1, 20, 20)
    assert data.images[0].shape == (1, 20, 20) and data.images[-1].shape == (1, 20, 20)
    part = load_dataset(f"folder:{folder}", "train", image_size=20, channels=1, seed=3, subset=4)
    assert len(part) == 4 and part.labels.shape == (4,)


def test_a_picture_that_fails_when_decoded_is_replaced_and_listed(tmp_path):
    root = tmp_path / "pics"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    for i in range(6):
        solid(root / "a" / f"a{i}.png", RED)
        solid(root / "b" / f"b{i}.png", BLUE)
    truncated_png(root / "a" / "cut.png")                             # its header reads: indexed, fails later
    for seed in range(50):                                            # a seed that trains on it
        data = load_dataset(f"folder:{root}", "train", image_size=8, seed=seed)
        files = data.images._source.files
        where = [k for k, i in enumerate(data.images._ids) if files[i].endswith("cut.png")]
        if where:
            break
    x = data.images[where]
    assert x.shape == (1, 3, 8, 8) and x[0, 0].mean() > 0.6          # a stand-in of its own class (red)
    assert [(os.path.basename(s.path), s.reason) for s in data.skipped] == [
        ("cut.png", "is truncated or damaged (OSError: image file is truncated)")]


def test_an_empty_an_unusable_and_a_missing_folder_are_one_sentence(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataMissingError, match="there is no picture in"):
        load_dataset(f"folder:{tmp_path / 'empty'}")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.jpg").write_text("text")
    (bad / "b.png").write_bytes(b"")
    with pytest.raises(DataMissingError, match="no readable picture") as info:
        load_dataset(f"folder:{bad}")
    assert "\n" not in str(info.value) and "2 entries were skipped" in str(info.value)
    with pytest.raises(DataMissingError, match="there is no folder"):
        load_dataset(f"folder:{tmp_path / 'gone'}")


def test_an_unlabelled_folder(tmp_path):
    for i in range(10):
        solid(tmp_path / f"p{i}.png", (40, 200, 60))
    data = load_dataset(f"folder:{tmp_path}", "train", image_size=12)
    assert data.labels is None and data.classes is None and not data.labelled
    assert data.images[:2].shape == (2, 3, 12, 12)


# ---------------------------------------------------------------------------------------------------------------
# shapes

def test_shapes_are_deterministic_per_seed_and_the_held_out_part_is_disjoint():
    a = load_dataset("shapes", "train", subset=64)
    b = load_dataset("shapes", "train", subset=64)
    assert torch.equal(a.images[:64], b.images[:64]) and torch.equal(a.factors, b.factors)
    c = load_dataset("shapes", "train", subset=64, seed=1)
    assert not torch.equal(a.factors, c.factors)
    assert a.image_shape == (3, 32, 32) and a.factor_names == ("shape", "colour", "size", "x", "y")
    assert torch.equal(a.labels, a.factors[:, 0]) and a.classes == SHAPES_FACTORS[0].values
    train, test = shapes_split(0, "train"), shapes_split(0, "test")
    assert len(train) + len(test) == len(shapes_table()) == 21_600 and not set(train) & set(test)
    assert len(load_dataset("shapes", "test")) == len(test) == 2160
    # as pictures too: no held-out picture is drawn in the training part
    whole = load_dataset("shapes", "train", image_size=16, channels=1)
    held = load_dataset("shapes", "test", image_size=16, channels=1)
    seen = {bytes(p) for p in (whole.tensor() * 255).round().to(torch.uint8).flatten(1).numpy()}
    assert not any(bytes(p) in seen for p in (held.tensor() * 255).round().to(torch.uint8).flatten(1).numpy())


def test_the_factors_match_the_pictures():
    data = load_dataset("shapes", "train", subset=300, image_size=64)
    x = data.tensor().numpy()
    ground = x[:, :, 0, 0]
    dist = np.abs(x - ground[:, :, None, None]).sum(axis=1)           # (N, H, W): how far from the ground
    fg = dist > 0.3                                                   # the shape's pixels
    areas, fills, cx, cy = [], [], [], []
    for k, (shape, colour, size, xi, yi) in enumerate(data.factors.tolist()):
        mask = fg[k]
        mean = x[k][:, dist[k] >= 0.9 * dist[k].max()].mean(axis=1)   # inside, away from the smooth edges
        want = np.array(SHAPES_COLOURS[colour]) / 255
        assert np.abs(mean - want).max() < 0.08, (data.factors[k], mean, want)
        if SHAPES_FACTORS[1].values[colour] == "red":
            assert mean[0] > mean[1] + 0.5 and mean[0] > mean[2] + 0.5   # a red shape is red-dominant
        rows, cols = np.nonzero(mask)
        box = (np.ptp(rows) + 1) * (np.ptp(cols) + 1)
        areas.append((size, mask.sum()))
        fills.append((shape, mask.sum() / box))
        cx.append((xi, (cols.min() + cols.max()) / 2))                # the box's centre (a triangle's centroid
        cy.append((yi, (rows.min() + rows.max()) / 2))                # lies lower)
    for shape, fill in fills:                                        # square ~1, circle ~pi/4, triangle ~1/2
        assert abs(fill - (1.0, np.pi / 4, 0.5)[shape]) < 0.12, (shape, fill)
    for pairs in (cx, cy):                                           # x and y bins do not overlap
        lows = [max(v for f, v in pairs if f == b) for b in range(3)]
        highs = [min(v for f, v in pairs if f == b + 1) for b in range(3)]
        assert all(lo < hi for lo, hi in zip(lows, highs))
    for shape in range(3):                                           # larger sizes, larger areas
        by = [np.mean([a for (s, a), (sh, _) in zip(areas, fills) if s == size and sh == shape])
              for size in range(3)]
        assert by[0] < by[1] < by[2]


# ---------------------------------------------------------------------------------------------------------------
# torchvision's sets, on tiny files in their layout (only the checksum is replaced, in the test)

def write_cifar10(root: Path, per_batch: int = 4) -> dict[str, np.ndarray]:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    written = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, per_batch)]
        with open(folder / name, "wb") as f:
            pickle.dump({"data": data, "labels": labels}, f)
        written[name] = data
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": list(CIFAR10_CLASSES)}, f)
    return written


@pytest.fixture
def trusted_checksums(monkeypatch):
    """The tests' own fake files pass torchvision's checksum; the classes are torchvision's, unchanged otherwise."""
    import torchvision.datasets.cifar as cifar
    from torchvision.datasets import CIFAR10, CelebA

    monkeypatch.setattr(CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(cifar, "check_integrity", lambda path, md5=None: os.path.isfile(path))
    monkeypatch.setattr(CelebA, "_check_integrity", lambda self: True)


def test_cifar10_through_torchvision(tmp_path, trusted_checksums):
    written = write_cifar10(tmp_path)
    train = load_dataset("cifar10", "train", root=tmp_path, download=False)
    test = load_dataset("cifar10", "test", root=tmp_path, download=False)
    assert len(train) == 20 and len(test) == 4 and train.image_shape == (3, 32, 32)
    assert train.classes == CIFAR10_CLASSES and train.labels.dtype == torch.int64
    first = torch.from_numpy(written["data_batch_1"][0].reshape(3, 32, 32)).float() / 255
    assert torch.equal(train.images[0], first)
    last = torch.from_numpy(written["test_batch"][3].reshape(3, 32, 32)).float() / 255
    assert torch.equal(test.images[3], last)
    grey = load_dataset("cifar10", "train", root=tmp_path, download=False, channels=1, subset=6)
    assert grey.images[:6].shape == (6, 1, 32, 32) and len(grey) == 6
    with pytest.raises(ValueError, match="32x32"):
        load_dataset("cifar10", root=tmp_path, image_size=64)


def test_cifar10_files_that_fail_torchvisions_checksum_are_never_read(tmp_path, monkeypatch):
    write_cifar10(tmp_path)
    loads = []
    monkeypatch.setattr(pickle, "load", lambda *a, **k: loads.append(a) or {})
    with pytest.raises(DataMissingError) as info:
        load_dataset("cifar10", root=tmp_path, download=False)
    assert loads == [] and "cifar-10-python.tar.gz" in str(info.value) and str(tmp_path) in str(info.value)


def write_celeba(root: Path, partition=(0, 0, 0, 1, 2, 2)) -> list[str]:
    from PIL import Image

    folder = root / "celeba"
    (folder / "img_align_celeba").mkdir(parents=True)
    names = [f"{i + 1:06d}.jpg" for i in range(len(partition))]
    for i, name in enumerate(names):
        pixels = np.zeros((218, 178, 3), np.uint8)
        pixels[:] = BLUE                                            # outside the centre crop
        pixels[35:183, 15:163] = (RED if i % 2 == 0 else (30, 200, 40))
        Image.fromarray(pixels).save(folder / "img_align_celeba" / name, quality=95)
    n = len(names)
    (folder / "list_eval_partition.txt").write_text("".join(f"{m} {p}\n" for m, p in zip(names, partition)))
    (folder / "identity_CelebA.txt").write_text("".join(f"{m} {i + 1}\n" for i, m in enumerate(names)))
    (folder / "list_bbox_celeba.txt").write_text(f"{n}\nimage_id x_1 y_1 width height\n"
                                                 + "".join(f"{m} 95 71 226 313\n" for m in names))
    marks = "lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y rightmouth_x rightmouth_y"
    (folder / "list_landmarks_align_celeba.txt").write_text(
        f"{n}\n{marks}\n" + "".join(f"{m} 69 109 106 113 77 142 73 152 108 154\n" for m in names))
    rows = "".join(f"{m}  " + " ".join("1" if (i + k) % 3 == 0 else "-1" for k in range(40)) + "\n"
                   for i, m in enumerate(names))
    (folder / "list_attr_celeba.txt").write_text(f"{n}\n" + " ".join(CELEBA_ATTRIBUTES) + " \n" + rows)
    return names


def test_celeba_through_torchvision(tmp_path, trusted_checksums):
    write_celeba(tmp_path)
    train = load_dataset("celeba", "train", root=tmp_path, download=False)
    test = load_dataset("celeba", "test", root=tmp_path, download=False)
    assert len(train) == 3 and len(test) == 2 and train.image_shape == (3, 64, 64)
    assert train.labels is None and train.classes is None and train.factor_names == CELEBA_ATTRIBUTES
    assert train.factors.shape == (3, 40) and set(train.factors.unique().tolist()) <= {0, 1}
    assert train.factors[1].tolist() == [int((1 + k) % 3 == 0) for k in range(40)]
    x = train.tensor()
    assert x.shape == (3, 3, 64, 64)
    assert (x[0, 0] > x[0, 2]).all() and (x[0, 0] - x[0, 2]).mean() > 0.5   # centre-cropped: no blue border left
    assert (x[1, 1] > x[1, 2]).all() and (x[1, 1] - x[1, 2]).mean() > 0.5
    small = load_dataset("celeba", "test", root=tmp_path, download=False, image_size=32, channels=1)
    assert small.images[:2].shape == (2, 1, 32, 32)


def test_torchvisions_sets_without_files_or_network_are_one_sentence(tmp_path):
    for name, words in (("cifar10", ("cifar-10-python.tar.gz", "internet")),
                        ("celeba", ("img_align_celeba", "list_eval_partition.txt"))):
        for download in (False, True):                               # the blocked network fails at once
            with pytest.raises(DataMissingError) as info:
                load_dataset(name, root=tmp_path / "empty", download=download)
            assert "\n" not in str(info.value) and all(w in str(info.value) for w in words)


# ---------------------------------------------------------------------------------------------------------------
# The CLI

def test_training_on_a_folder_skips_and_says_so(tmp_path, capsys):
    folder = tmp_path / "pics"                                        # a folder of its own: nothing known of it yet
    make_folder(folder)
    out = tmp_path / "mine.safetensors"
    assert cli("train", "--family", "vae", *TINY_VAE, "--data", f"folder:{folder}", "--image-size", 32,
               "--channels", 3, "--steps", 3, "--batch-size", 8, *CPU, "--out", out) == 0
    captured = capsys.readouterr()
    notes = [line for line in captured.err.splitlines() if line.startswith("skipped")]
    log = tmp_path / "mine.skipped.txt"
    assert notes[0] == f"skipped 9 files of {folder} that are not readable pictures; they are listed in {log}"
    listed = log.read_text().splitlines()
    for name in ("empty.png", "notes.jpg", "bomb.png", "link-to-text.png", "link-to-folder.png",
                 "link-to-nothing.png", "deeper", "stray.png", "pipe.png"):
        assert any(os.path.basename(line.split(":")[0]) == name for line in listed), name
    meta = ck.read_metadata(out)
    assert meta.dataset == f"folder:{folder}" and meta.image_shape == (3, 32, 32)
    assert meta.training["data"]["image_shape"] == [3, 32, 32]
    assert cli("sample", out, "--n", 4, "--out", tmp_path / "x.npy", *CPU) == 0
    x = np.load(tmp_path / "x.npy")
    assert x.shape == (4, 3, 32, 32) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    # a resume reads the folder again at the run's own size
    state = tmp_path / "mine.state.safetensors"
    assert cli("train", "--resume", state, "--steps", 4, *CPU, "--out", out) == 0
    assert ck.read_metadata(out).train_steps == 4 and ck.read_metadata(out).image_shape == (3, 32, 32)
    capsys.readouterr()
    assert cli("train", "--resume", state, "--steps", 5, "--image-size", 16, *CPU, "--out", out) == 2
    one_line(capsys, "--image-size")


def test_verbose_lists_every_skipped_file(folder, tmp_path, capsys):
    assert cli("train", "--family", "vae", *TINY_VAE, "--data", f"folder:{folder}", "--image-size", 28,
               "--channels", 1, "--steps", 1, "--batch-size", 8, "--verbose", *CPU,
               "--out", tmp_path / "v.safetensors") == 0
    err = capsys.readouterr().err
    assert f"skipped {folder / 'blue' / 'bomb.png'}: claims" in err
    assert f"skipped {folder / 'red' / 'deeper'}: a folder nested deeper" in err


@pytest.mark.parametrize("kind", ["empty", "unusable", "missing", "a file"])
def test_a_folder_with_nothing_usable_exits_2_in_one_line(kind, tmp_path, capsys):
    root = tmp_path / "pics"
    if kind == "empty":
        root.mkdir()
    elif kind == "unusable":
        (root / "cats").mkdir(parents=True)
        (root / "cats" / "a.jpg").write_text("not a picture")
        (root / "cats" / "b.png").write_bytes(b"")
        truncated_png(root / "stray.png")
    elif kind == "a file":
        root.write_text("x")
    assert cli("train", "--family", "vae", *TINY_VAE, "--data", f"folder:{root}", "--steps", 1, *CPU,
               "--out", tmp_path / "x.safetensors") == 2
    one_line(capsys, str(root))
    assert not (tmp_path / "x.safetensors").exists()


def test_cifar10_without_files_or_network_is_one_line(tmp_path, capsys):
    assert cli("train", "--family", "vae", *TINY_VAE, "--data", "cifar10", "--data-root", tmp_path / "empty",
               "--steps", 1, *CPU, "--out", tmp_path / "x.safetensors") == 2
    one_line(capsys, "cifar10", "cifar-10-python.tar.gz", str(tmp_path / "empty"))


@pytest.mark.parametrize("flags, words", [
    (["--data", "imagenet"], ["unknown data set", "folder:PATH"]),
    (["--data", "cifar10", "--image-size", 64], ["32x32"]),
    (["--data", "shapes", "--image-size", 4], ["--image-size"]),
    (["--data", "shapes", "--config", "image_shape=[1,28,28]"], ["image_shape", "--image-size"]),
])
def test_bad_data_flags_are_one_line(flags, words, tmp_path, capsys):
    assert cli("train", "--family", "vae", *TINY_VAE, *flags, "--steps", 1, *CPU,
               "--out", tmp_path / "x.safetensors") == 2
    one_line(capsys, *words)


def test_a_class_conditional_model_needs_labels(tmp_path, capsys):
    for i in range(4):
        solid(tmp_path / f"p{i}.png", RED)
    assert cli("train", "--family", "ddpm", "--classes", "--data", f"folder:{tmp_path}", "--steps", 1, *CPU,
               "--out", tmp_path / "x.safetensors") == 2
    one_line(capsys, "no class labels")


def test_training_on_shapes_in_colour(tmp_path, capsys):
    out = tmp_path / "shapes.safetensors"
    assert cli("train", "--family", "vae", *TINY_VAE, "--data", "shapes", "--steps", 3, "--batch-size", 16,
               *CPU, "--out", out) == 0
    meta = ck.read_metadata(out)
    assert meta.dataset == "shapes" and meta.image_shape == (3, 32, 32)
    assert json.loads(json.dumps(meta.training))["data"]["skipped"] == 0
