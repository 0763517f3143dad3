"""`python -m models import` on the field's reference models: pytorch/examples' VAE (vae/main.py) and DCGAN
(dcgan/main.py), defined here as published, saved with torch.save(state_dict), recognised by their tensors with no
--family, and decoding (and encoding, and judging) exactly as the originals do; and every bad .pth as one line
with exit status 2, nothing in it run."""
from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from models import checkpoint as ck
from models import reference_models as rm
from models.catalog import CRITIC, DECODE, ENCODE
from models.cli import main
from pytorch_examples import Discriminator, ExamplesVAE, Generator, trained_looking


def cli(*args) -> int:
    return main([str(a) for a in args])


def one_line_error(capsys, *words: str) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


NZ, NGF, NDF, NC = 8, 4, 4, 3      # small widths for speed; the layout (and the 64x64 picture) as published


@pytest.fixture
def netG_file(tmp_path) -> tuple[Generator, Path]:
    net = trained_looking(Generator(nz=NZ, ngf=NGF, nc=NC), seed=1)
    path = tmp_path / "netG_epoch_24.pth"
    torch.save(net.state_dict(), path)
    return net, path


@pytest.fixture
def netD_file(tmp_path) -> tuple[Discriminator, Path]:
    net = trained_looking(Discriminator(ndf=NDF, nc=NC), seed=2)
    path = tmp_path / "netD_epoch_24.pth"
    torch.save(net.state_dict(), path)
    return net, path


# ---------------------------------------------------------------------------------------------------------------
# the VAE

def test_the_examples_vae_imports_without_a_family_and_decodes_as_the_original(tmp_path, capsys):
    torch.manual_seed(0)
    original = ExamplesVAE().eval()
    path = tmp_path / "vae.pth"
    torch.save(original.state_dict(), path)
    out = tmp_path / "vae.safetensors"
    assert cli("import", path, "--out", out, "--device", "cpu") == 0
    assert "pytorch/examples' VAE" in capsys.readouterr().out

    model = ck.load(out)
    meta = ck.read_metadata(out)
    assert (meta.family, model.latent_dim, model.image_shape, meta.dataset) == ("vae", 20, (1, 28, 28), "mnist")
    assert {ENCODE, DECODE} <= model.capabilities
    z = torch.randn(16, 20) * 2
    x = torch.rand(16, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(model.decode(z), original.decode(z).view(16, 1, 28, 28), atol=1e-6, rtol=0)
        mu, logvar = original.encode(x.view(-1, 784))
        posterior = model.encode(x)
        torch.testing.assert_close(posterior.mu, mu, atol=1e-6, rtol=0)
        torch.testing.assert_close(posterior.logvar, logvar, atol=1e-6, rtol=0)


def test_family_forces_a_reading(tmp_path, capsys):
    path = tmp_path / "vae.pth"
    torch.save(ExamplesVAE().state_dict(), path)
    assert cli("import", path, "--family", "vae", "--out", tmp_path / "a.safetensors", "--device", "cpu") == 0
    assert ck.read_metadata(tmp_path / "a.safetensors").config.hidden == (400,)
    capsys.readouterr()
    # as a family it is not, its tensors are read by that family's own names, and do not fit them
    assert cli("import", path, "--family", "ae", "--latent-dim", 20, "--out", tmp_path / "b.safetensors",
               "--device", "cpu") == 2
    one_line_error(capsys, "vae.pth", "fc1")
    # a reference model's sizes come from its tensors, not from flags
    assert cli("import", path, "--latent-dim", 8, "--out", tmp_path / "c.safetensors", "--device", "cpu") == 2
    one_line_error(capsys, "--latent-dim", "VAE")


# ---------------------------------------------------------------------------------------------------------------
# the DCGAN

def test_the_dcgan_generator_imports_without_a_detective_and_decodes_as_netG_in_eval_mode(netG_file, tmp_path,
                                                                                           capsys):
    netG, path = netG_file
    out = tmp_path / "dcgan.safetensors"
    assert cli("import", path, "--out", out, "--device", "cpu") == 0
    assert "DCGAN generator" in capsys.readouterr().out
    model = ck.load(out)
    assert (model.family, model.latent_dim, model.image_shape) == ("gan", NZ, (NC, 64, 64))
    assert CRITIC not in model.capabilities and DECODE in model.capabilities
    with pytest.raises(ValueError, match="detective"):
        model.critic(torch.rand(1, NC, 64, 64))

    z = torch.randn(6, NZ)
    with torch.no_grad():
        expected = (netG(z.view(6, NZ, 1, 1)) + 1) / 2
        torch.testing.assert_close(model.decode(z), expected, atol=1e-6, rtol=0)
        assert not torch.allclose(netG.train()(z.view(6, NZ, 1, 1)), expected * 2 - 1, atol=1e-3)  # BN matters
        assert model.sample(3, torch.Generator().manual_seed(0)).shape == (3, NC, 64, 64)


def test_its_discriminator_joins_with_critic(netG_file, netD_file, tmp_path):
    (netG, g_path), (netD, d_path) = netG_file, netD_file
    out = tmp_path / "dcgan.safetensors"
    assert cli("import", g_path, "--critic", d_path, "--out", out, "--device", "cpu") == 0
    model = ck.load(out)
    assert CRITIC in model.capabilities
    x = torch.rand(5, NC, 64, 64)
    z = torch.randn(5, NZ)
    with torch.no_grad():
        torch.testing.assert_close(model.critic(x), netD(2 * x - 1), atol=1e-6, rtol=0)
        torch.testing.assert_close(model.decode(z), (netG(z.view(5, NZ, 1, 1)) + 1) / 2, atol=1e-6, rtol=0)


def test_the_default_sizes_are_read_from_the_shapes():
    with torch.device("meta"):          # shapes only: nothing of the 3.6 M + 2.8 M weights is allocated
        netG, netD = Generator(), Discriminator()
        small = Generator(nz=16, ngf=8, nc=1)
    reading = rm.recognise(Path("netG_epoch_24.pth"), netG.state_dict())
    assert reading.family == "gan"
    assert reading.config.latent_dim == 100
    assert reading.config.channels == (64, 128, 256, 512)
    assert reading.config.image_shape == (3, 64, 64)
    assert not reading.config.detective
    joined = rm.with_critic(reading, "netD_epoch_24.pth", netD.state_dict())
    assert joined.config.detective and joined.config.d_channels == (64, 128, 256, 512)
    assert rm.recognise(Path("g.pth"), small.state_dict()).config.image_shape == (1, 64, 64)
    # nn.DataParallel's 'module.' prefix is taken off
    wrapped = {f"module.{k}": v for k, v in netG.state_dict().items()}
    assert rm.recognise(Path("dp.pth"), wrapped).config == reading.config


def _dcgan_generator_tensors(widths: list[int]) -> dict[str, torch.Tensor]:
    """netG's tensors (on the meta device: shapes only) for nz = widths[0] and stage widths widths[1:]."""
    state = {}
    with torch.device("meta"):
        for i in range(len(widths) - 1):
            state[f"main.{3 * i}.weight"] = torch.empty(widths[i], widths[i + 1], 4, 4)
            if i < len(widths) - 2:
                state.update({f"main.{3 * i + 1}.{p}": torch.empty(() if p == "num_batches_tracked" else widths[i + 1])
                              for p in rm.BATCHNORM})
    return state


def test_a_generator_drawing_pictures_past_memory_is_refused_from_its_shapes():
    """The picture's side comes from the layer count and the feature maps from the widths: a few kilobytes of
    weights can ask for a 65,536-pixel side, or for 3,000 channels at 1,024 x 1,024 (12 GB a picture)."""
    usual = _dcgan_generator_tensors([8, 64, 32, 16, 8, 3])
    assert rm.recognise(Path("g.pth"), usual).config.image_shape == (3, 64, 64)
    tall = _dcgan_generator_tensors([4] + [1] * 14 + [1])               # 4 << 14 = 65,536 pixels a side
    with pytest.raises(rm.UnknownModelError, match="65536x65536"):
        rm.recognise(Path("tall.pth"), tall)
    wide = _dcgan_generator_tensors([4] + [1] * 8 + [3000, 3])           # 2,048 a side, 3,000 channels before
    with pytest.raises(rm.UnknownModelError, match="GiB"):
        rm.recognise(Path("wide.pth"), wide)
    # a discriminator judging the generator's 2,048 x 2,048 pictures through 3,000 channels at 1,024 x 1,024
    generator = rm.recognise(Path("g.pth"), _dcgan_generator_tensors([4] + [1] * 9 + [3]))
    widths = [3000] + [1] * 8
    with torch.device("meta"):
        netD = {"main.0.weight": torch.empty(widths[0], 3, 4, 4), "main.26.weight": torch.empty(1, widths[-1], 4, 4)}
        for j in range(1, len(widths)):
            netD[f"main.{3 * j - 1}.weight"] = torch.empty(widths[j], widths[j - 1], 4, 4)
            netD.update({f"main.{3 * j}.{p}": torch.empty(() if p == "num_batches_tracked" else widths[j])
                         for p in rm.BATCHNORM})
    with pytest.raises(rm.UnknownModelError, match="GiB"):
        rm.with_critic(generator, "netD.pth", netD)


def test_a_discriminator_that_does_not_fit_its_generator_is_refused(netG_file, tmp_path, capsys):
    _, g_path = netG_file
    grey = tmp_path / "netD_grey.pth"
    torch.save(trained_looking(Discriminator(ndf=NDF, nc=1), 3).state_dict(), grey)
    assert cli("import", g_path, "--critic", grey, "--out", tmp_path / "x.safetensors", "--device", "cpu") == 2
    one_line_error(capsys, "netD_grey.pth", "1-channel", "3-channel")
    # the discriminator alone is no model to explore: it says how to bring it in
    assert cli("import", grey, "--out", tmp_path / "x.safetensors", "--device", "cpu") == 2
    one_line_error(capsys, "discriminator", "--critic")
    vae = tmp_path / "vae.pth"
    torch.save(ExamplesVAE().state_dict(), vae)
    assert cli("import", vae, "--critic", grey, "--out", tmp_path / "x.safetensors", "--device", "cpu") == 2
    one_line_error(capsys, "--critic", "VAE")
    assert not (tmp_path / "x.safetensors").exists()


# ---------------------------------------------------------------------------------------------------------------
# bad .pth files: one line, exit 2, nothing run, nothing written

class Booby:
    """Unpickling this creates a marker file: proof that pickle code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_pickle_with_code_is_refused_and_nothing_runs(tmp_path, capsys):
    marker = tmp_path / "pwned"
    payload = {**ExamplesVAE().state_dict(), "fc1.bias": Booby(marker)}
    zipped, raw = tmp_path / "zip.pth", tmp_path / "raw.pth"
    torch.save(payload, zipped)
    raw.write_bytes(pickle.dumps(payload, protocol=2))
    for path in (zipped, raw):
        assert cli("import", path, "--out", tmp_path / "x.safetensors", "--device", "cpu") == 2
        line = one_line_error(capsys, path.name, "nothing in it ran")
        assert "it asks for" in line and "safe_globals" not in line     # what it wanted, and no advice to allow it
        assert not marker.exists(), f"pickle code ran while importing {path.name}"
    assert not (tmp_path / "x.safetensors").exists()


def test_shapes_of_no_known_model_say_what_was_expected(tmp_path, capsys):
    other = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(8, 3, 3, 3), "fc.weight": torch.zeros(10, 8)}, other)
    assert cli("import", other, "--out", tmp_path / "x.safetensors", "--device", "cpu") == 2
    one_line_error(capsys, "resnet.pth", "conv1.weight", "fc1, fc21, fc22, fc3, fc4", "main.0")

    state = ExamplesVAE().state_dict()
    state["fc3.weight"] = torch.zeros(400, 30)           # a latent of 30 into a decoder of 20
    bent = tmp_path / "bent.pth"
    torch.save(state, bent)
    assert cli("import", bent, "--out", tmp_path / "x.safetensors", "--device", "cpu") == 2
    one_line_error(capsys, "bent.pth", "fc3.weight", "(400, 30)", "(400, 20)")

    odd = {k: v for k, v in Generator(nz=NZ, ngf=NGF).state_dict().items()}
    odd["main.3.weight"] = torch.zeros(NGF * 4, NGF * 4, 4, 4)    # its input is not main.0's output
    path = tmp_path / "odd.pth"
    torch.save(odd, path)
    assert cli("import", path, "--out", tmp_path / "x.safetensors", "--device", "cpu") == 2
    one_line_error(capsys, "odd.pth", "main.3.weight")
    assert not (tmp_path / "x.safetensors").exists()


def test_a_file_or_a_zip_that_unpacks_past_memory_is_refused_unread(tmp_path, capsys, monkeypatch):
    """What a .pth may hold is bounded by what this machine's memory allows a model (here made 1 MiB): its size,
    and for a zip the sizes its members unpack to, which torch.load would allocate (deflate packs 1,000:1)."""
    import zipfile

    import models.diffusers_folder

    monkeypatch.setattr(models.diffusers_folder, "memory_limit", lambda: 2 ** 20)
    big = tmp_path / "vae.pth"
    torch.save(ExamplesVAE().state_dict(), big)                          # 2.5 MB
    plain = tmp_path / "plain.pth"
    torch.save({"w": torch.zeros(1000, 1000)}, plain)                    # 4 MB of zeros
    bomb = tmp_path / "bomb.pth"
    with zipfile.ZipFile(plain) as zin, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zout:
        for member in zin.infolist():
            zout.writestr(member.filename, zin.read(member.filename))
    assert bomb.stat().st_size < 2 ** 16
    for path, words in ((big, ("vae.pth is 2.", "MiB")), (bomb, ("bomb.pth unpacks to 3.8 MiB",))):
        assert cli("import", path, "--out", tmp_path / "x.safetensors", "--device", "cpu") == 2
        one_line_error(capsys, *words, "1.0 MiB")
    assert not (tmp_path / "x.safetensors").exists()


def test_a_file_is_read_into_what_it_holds_not_into_what_memory_would_allow(tmp_path, capsys, monkeypatch):
    """read(n) allocates n bytes before it reads: reading up to the bound would ask for all of it."""
    import models.diffusers_folder

    monkeypatch.setattr(models.diffusers_folder, "memory_limit", lambda: 2 ** 50)
    path = tmp_path / "vae.pth"
    torch.save(ExamplesVAE().state_dict(), path)
    assert cli("import", path, "--out", tmp_path / "x.safetensors", "--device", "cpu") == 0


def test_truncated_empty_and_nan_files_are_refused(netG_file, tmp_path, capsys):
    netG, path = netG_file
    data = path.read_bytes()
    for name, content in (("half.pth", data[: len(data) // 2]), ("tail.pth", data[:-20]), ("empty.pth", b""),
                          ("text.pth", b"hello\n")):
        (tmp_path / name).write_bytes(content)
        assert cli("import", tmp_path / name, "--out", tmp_path / "x.safetensors", "--device", "cpu") == 2
        one_line_error(capsys, name)

    state = netG.state_dict()
    state["main.4.running_var"] = state["main.4.running_var"].clone().fill_(float("nan"))
    nan = tmp_path / "nan.pth"
    torch.save(state, nan)
    assert cli("import", nan, "--out", tmp_path / "x.safetensors", "--device", "cpu") == 2
    one_line_error(capsys, "nan.pth", "NaN", "main.4.running_var")
    assert not (tmp_path / "x.safetensors").exists()
