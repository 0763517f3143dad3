"""The review's holes in opening models made elsewhere (diffusers folders, pytorch/examples state dicts) and in
our own files: each is one clear sentence (exit 2 at the command line), never a traceback, a hang or a giant
allocation. One test a hole."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from models import checkpoint as ck
from test_reference_models import cli, one_line_error

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------------------------------
# One helper lists names in a sentence

def test_every_message_lists_names_through_one_helper(tmp_path, capsys):
    """A state dict of 40 unknown tensors, one with a newline in its name, is named in one line, a few names
    and a count; and the models package has one function that writes such lists, not one per module."""
    state = {f"layer{i}.weight": torch.zeros(1) for i in range(40)} | {"bad\nname": torch.zeros(1)}
    path = tmp_path / "unknown.pth"
    torch.save(state, path)
    assert cli("import", path, "--out", tmp_path / "x.safetensors", "--device", "cpu") == 2
    line = one_line_error(capsys, "'bad\\nname'", "and 38 more")
    assert line.count("'layer") == 2
    writers = [p for p in (ROOT / "models").rglob("*.py") if re.search(r'more" if len\(', p.read_text())]
    assert [p.name for p in writers] == ["core.py"], writers


# ---------------------------------------------------------------------------------------------------------------
# diffusers folders: attention's cost, block names

def _folder(tmp_path: Path, **unet_changes) -> Path:
    """A tiny DDPM pipeline saved by diffusers (attention at its second level), its UNet config edited."""
    import json

    from diffusers_folders import save_pipeline, tiny_unet

    folder = save_pipeline(tmp_path / "pipe", tiny_unet(1, 8), num_train_timesteps=50)
    config = folder / "unet" / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), **unet_changes}))
    return folder


def test_attention_too_large_for_memory_is_refused_though_the_weights_are_small(tmp_path, capsys):
    """Attention at 512 x 512 compares 262,144 positions with each other: terabytes of scores for one picture,
    from a config whose weights (which do not depend on the picture's size) are a few kilobytes."""
    folder = _folder(tmp_path, sample_size=512, down_block_types=["AttnDownBlock2D", "DownBlock2D"],
                     up_block_types=["UpBlock2D", "AttnUpBlock2D"])
    assert cli("info", folder) == 2
    one_line_error(capsys, "attention at 512 x 512", "GiB")
    small = _folder(tmp_path / "small", sample_size=64)       # attention at 32 x 32: 8 MiB, opens
    assert cli("info", small) == 0


@pytest.mark.parametrize("key, name", [("mid_block_type", "UNetMidBlock2DCrossAttn"),
                                       ("down_block_types", "FancyDownBlock2D"),
                                       ("up_block_types", "CrossAttnUpBlock2D")])
def test_a_block_type_unet2dmodel_does_not_run_is_named_with_those_it_does(key, name, tmp_path, capsys):
    """UNet2DModel builds its middle block whatever the name says, and builds cross-attention blocks it cannot
    call: each is refused from the config, naming the block and the ones Latent Explorer runs."""
    value = name if key == "mid_block_type" else {"down_block_types": [name, "AttnDownBlock2D"],
                                                   "up_block_types": ["AttnUpBlock2D", name]}[key]
    folder = _folder(tmp_path, **{key: value})
    assert cli("info", folder) == 2
    one_line_error(capsys, key, f"'{name}'", "UNetMidBlock2D" if key == "mid_block_type" else "'AttnDownBlock2D'"
                   if key == "down_block_types" else "'AttnUpBlock2D'")
    with pytest.raises(ck.CheckpointError, match=name):
        ck.read_metadata(folder)


# ---------------------------------------------------------------------------------------------------------------
# The command line out of memory

@pytest.mark.parametrize("error", [torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB"),
                                   RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: not "
                                                "enough memory: you tried to allocate 8589934592 bytes.")])
def test_sampling_out_of_memory_is_one_sentence_that_says_what_to_try(error, tiny_config, tmp_path, capsys,
                                                                     monkeypatch):
    import models
    from models.ddpm import DDPM

    path = tmp_path / "ddpm.safetensors"
    ck.save(models.build("ddpm", tiny_config("ddpm")), path, dataset="fashion-mnist", train_steps=0)

    def sample(*args, **kwargs):
        raise error

    monkeypatch.setattr(DDPM, "sample", sample)
    assert cli("sample", path, "--n", 300, "--out", tmp_path / "s.png", "--device", "cpu") == 2
    line = one_line_error(capsys, "cpu ran out of memory drawing 300 samples 256 at a time", "--n", "--batch-size")
    assert "--device cpu" not in line                      # on the CPU already; elsewhere it is the third thing to try
    monkeypatch.setattr(DDPM, "sample", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("a shape bug")))
    with pytest.raises(RuntimeError, match="a shape bug"):       # any other error is a bug, not the user's
        cli("sample", path, "--n", 2, "--out", tmp_path / "s.png", "--device", "cpu")


# ---------------------------------------------------------------------------------------------------------------
# Our own files: a config asking for more than memory allows

def _with_header_text(src: Path, dst: Path, key: str, edit) -> Path:
    """A copy of a safetensors file whose metadata text under `key` is edit(text)."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(src), "pt") as f:
        header = dict(f.metadata())
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    header[key] = edit(header[key])
    save_file(tensors, str(dst), metadata=header)
    return dst


def _with_header_meta(src: Path, dst: Path, key: str, edit) -> Path:
    """A copy of a safetensors file whose JSON metadata under `key` is edit(meta)'s."""
    import json

    return _with_header_text(src, dst, key, lambda text: json.dumps(edit(json.loads(text))))


def test_a_config_asking_for_giant_pictures_or_layers_is_refused_before_anything_is_built(tiny_config, tmp_path,
                                                                                          capsys):
    """A DDPM's weights do not depend on its picture's size, so a file of small weights whose config asks for
    65,536 x 65,536 pictures would load and then allocate gigabytes a picture; a training state whose config
    asks for a billion hidden units would build them on resume. Each is one sentence before anything is built."""
    import models
    from models.train import TrainSettings, load_trainer, new_trainer, save_trainer

    path = tmp_path / "ddpm.safetensors"
    ck.save(models.build("ddpm", tiny_config("ddpm")), path, dataset="fashion-mnist", train_steps=0)
    side = 2 ** 16
    giant = _with_header_meta(path, tmp_path / "giant.safetensors", ck.METADATA_KEY,
                              lambda m: {**m, "image_shape": [1, side, side],
                                         "config": {**m["config"], "image_shape": [1, side, side]}})
    with pytest.raises(ck.TooLargeError, match="65,536 x 65,536 pictures"):
        ck.load(giant)
    assert cli("info", giant) == 2
    one_line_error(capsys, "65,536 x 65,536 pictures", "2048")

    state = tmp_path / "vae.state.safetensors"
    save_trainer(new_trainer(models.build("vae", tiny_config("vae")), TrainSettings(batch_size=4, steps=2)), state)
    wide = _with_header_meta(state, tmp_path / "wide.state.safetensors", ck.TRAIN_STATE_KEY,
                             lambda m: {**m, "config": {**m["config"], "hidden": [10 ** 9]}})
    with pytest.raises(ck.TooLargeError, match="1,000,000,000 wide"):
        load_trainer(wide)


# ---------------------------------------------------------------------------------------------------------------
# pytorch/examples: half-precision weights, BatchNorm statistics

@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_the_examples_vae_saved_in_half_precision_imports_as_float32(dtype, tmp_path, capsys):
    from pytorch_examples import ExamplesVAE

    torch.manual_seed(0)
    original = ExamplesVAE().to(dtype).eval()
    path = tmp_path / "vae.pth"
    torch.save(original.state_dict(), path)
    out = tmp_path / "vae.safetensors"
    assert cli("import", path, "--out", out, "--device", "cpu") == 0
    model = ck.load(out)
    assert all(v.dtype == torch.float32 for v in model.state_dict().values())
    z = torch.randn(4, 20)
    with torch.no_grad():               # the same weights, rounded once: as the original computed in float32
        torch.testing.assert_close(model.decode(z), original.float().decode(z).view(4, 1, 28, 28), atol=1e-6, rtol=0)

    ints = {k: (v * 100).to(torch.int32) for k, v in original.state_dict().items()}
    torch.save(ints, path)
    assert cli("import", path, "--out", out, "--device", "cpu") == 2
    one_line_error(capsys, "pytorch/examples' VAE", "int32", "floating-point")


@pytest.mark.parametrize("value, words", [(-0.5, "negative (-0.5)"), (float("nan"), "NaN or Inf")])
def test_a_dcgan_whose_batchnorm_variance_is_negative_or_not_finite_is_refused_naming_the_layer(value, words,
                                                                                               tmp_path, capsys):
    from pytorch_examples import Discriminator, Generator

    state = Generator(nz=8, ngf=4, nc=3).state_dict()
    state["main.4.running_var"][2] = value
    path = tmp_path / "netG_epoch_24.pth"
    torch.save(state, path)
    assert cli("import", path, "--out", tmp_path / "g.safetensors", "--device", "cpu") == 2
    one_line_error(capsys, "BatchNorm layer main.4", words, "running variance")

    torch.save(Generator(nz=8, ngf=4, nc=3).state_dict(), path)
    critic = Discriminator(ndf=4, nc=3).state_dict()
    critic["main.3.running_var"][0] = value
    torch.save(critic, tmp_path / "netD.pth")
    assert cli("import", path, "--critic", tmp_path / "netD.pth", "--out", tmp_path / "g.safetensors",
               "--device", "cpu") == 2
    one_line_error(capsys, "discriminator", "BatchNorm layer main.3", words)


# ---------------------------------------------------------------------------------------------------------------
# JSON nested past Python's stack

def test_a_training_state_whose_metadata_nests_too_deeply_is_one_sentence(tiny_config, tmp_path, capsys):
    """json's decoder recurses once per nested list: 100,000 brackets would be a RecursionError, a traceback."""
    import models
    from models.cli.common import UsageError, make_config
    from models.train import TrainSettings, load_trainer, new_trainer, save_trainer

    state = tmp_path / "vae.state.safetensors"
    save_trainer(new_trainer(models.build("vae", tiny_config("vae")), TrainSettings(batch_size=4, steps=2)), state)
    deep = _with_header_text(state, tmp_path / "deep.state.safetensors", ck.TRAIN_STATE_KEY,
                             lambda text: text[:-1] + ', "plan": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(ck.CheckpointError, match="nests its values too deeply"):
        load_trainer(deep)
    with pytest.raises(UsageError, match="too deeply"):
        make_config("vae", None, None, ["hidden=" + "[" * 100_000])


# ---------------------------------------------------------------------------------------------------------------
# DPM-Solver++ in a folder whose scheduler is DPMSolverMultistepScheduler: diffusers' own run

@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
@pytest.mark.parametrize("steps", [8, 5])
@pytest.mark.parametrize("settings", [dict(), dict(prediction_type="sample"),
                                      dict(timestep_spacing="leading", steps_offset=1),
                                      dict(timestep_spacing="trailing", prediction_type="v_prediction")])
def test_dpm_solver_in_a_dpm_solver_folder_gives_what_its_scheduler_gives(settings, steps, tmp_path):
    """The steps DPMSolverMultistepScheduler.set_timesteps spaces (by default "linspace" over k + 1 points, the
    last dropped: not DDIM's), and no clipping of x0 (that scheduler has none; a network predicting x0 far
    outside [-1, 1] shows it), to 1e-3 in [0, 1] from the same x_T."""
    import json

    from diffusers import DPMSolverMultistepScheduler
    from diffusers_folders import save_pipeline, tiny_unet

    unet = tiny_unet(3, 8)
    folder = save_pipeline(tmp_path / "dpm", unet, "DPMSolverMultistepScheduler", num_train_timesteps=100,
                           **settings)
    model = ck.load(folder, "cpu")
    x_T = torch.randn((3, *model.image_shape), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        frames = list(model.raw_frames(x_T, sampler="dpm++", steps=steps))
    sc = DPMSolverMultistepScheduler.from_config(json.loads((folder / "scheduler" / "scheduler_config.json")
                                                            .read_text(), parse_constant=float))
    sc.set_timesteps(steps)
    assert [f.t for f in frames] == sc.timesteps.tolist()
    x = x_T.clone()
    with torch.no_grad():
        for t in sc.timesteps:
            x = sc.step(unet(x, t).sample, t, x).prev_sample
    assert float((frames[-1].x0 - x).abs().max()) / 2 < 1e-3          # in [-1, 1]: half of it in [0, 1]
    assert float(x.abs().max()) > 0.5                                  # pictures, not a constant


@pytest.mark.parametrize("key, value", [("use_karras_sigmas", True), ("final_sigmas_type", "sigma_min"),
                                        ("solver_order", 3), ("algorithm_type", "sde-dpmsolver++")])
def test_a_dpm_solver_setting_that_changes_the_run_is_named(key, value, tmp_path, capsys):
    import json

    from diffusers_folders import save_pipeline, tiny_unet

    folder = save_pipeline(tmp_path / "dpm", tiny_unet(1, 8), "DPMSolverMultistepScheduler", num_train_timesteps=50)
    config = folder / "scheduler" / "scheduler_config.json"
    config.write_text(json.dumps({**json.loads(config.read_text(), parse_constant=float), key: value}))
    assert cli("info", folder) == 2
    one_line_error(capsys, f"'{key}'", "DPM-Solver++(2M)")
