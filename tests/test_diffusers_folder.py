"""Folders saved by diffusers open as diffusion models: samples equal diffusers' own loop from the same x_T, every
sampler runs, classes are taken but no guidance, and every bad folder is one sentence (exit 2) before anything
is built. The folders are tiny pipelines with seeded random weights, written by diffusers' save_pretrained."""
from __future__ import annotations

import json
import os
import pickle
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from diffusers_folders import diffusers_ddim, save_bare_unet, save_pipeline, tiny_unet
from models import checkpoint as ck
from models.cli import main

TOL = 1e-3
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

# (name, unet kwargs, scheduler, pipeline, scheduler settings)
CASES = {
    "grey-epsilon-linear": (dict(channels=1, size=8), "DDPMScheduler", "DDPMPipeline",
                            dict(num_train_timesteps=100)),
    "colour-v-cosine": (dict(channels=3, size=16), "DDPMScheduler", "DDPMPipeline",
                        dict(num_train_timesteps=100, beta_schedule="squaredcos_cap_v2",
                             prediction_type="v_prediction")),
    "colour-sample-linear-unclipped": (dict(channels=3, size=(16, 8)), "DDPMScheduler",
                                       "DDPMPipeline", dict(num_train_timesteps=100, prediction_type="sample",
                                                            clip_sample=False)),
    "grey-ddim-trailing-scaled": (dict(channels=1, size=8), "DDIMScheduler", "DDIMPipeline",
                                  dict(num_train_timesteps=100, beta_schedule="scaled_linear",
                                       beta_start=0.00085, beta_end=0.012, timestep_spacing="trailing",
                                       set_alpha_to_one=False, clip_sample_range=0.5)),
    "grey-linspace-trained-betas": (dict(channels=1, size=8), "DDIMScheduler", "DDIMPipeline",
                                    dict(num_train_timesteps=60, timestep_spacing="linspace",
                                         trained_betas=torch.linspace(1e-3, 0.05, 60).tolist())),
    "colour-leading-offset": (dict(channels=3, size=8), "DDIMScheduler", "DDIMPipeline",
                              dict(num_train_timesteps=100, steps_offset=1, prediction_type="v_prediction")),
}


def build(tmp_path: Path, name: str, classes: int | None = None) -> tuple[Path, object]:
    unet_kwargs, scheduler, pipeline, settings = CASES[name]
    kwargs = dict(unet_kwargs)
    channels, size = kwargs.pop("channels"), kwargs.pop("size")
    unet = tiny_unet(channels, size, classes, **kwargs)
    return save_pipeline(tmp_path / name, unet, scheduler, pipeline, **settings), unet


def x_T_for(model, n: int = 3, seed: int = 1) -> torch.Tensor:
    return torch.randn((n, *model.image_shape), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("steps", [10, 7])
@pytest.mark.parametrize("name", sorted(CASES))
def test_ddim_at_eta_0_gives_what_diffusers_gives_from_the_same_x_T(name, steps, tmp_path):
    folder, unet = build(tmp_path, name)
    model = ck.load(folder, "cpu")
    x_T = x_T_for(model)
    ours = model.sample_from(x_T, steps)
    theirs = diffusers_ddim(folder, unet, x_T, steps)
    assert ours.shape == theirs.shape == (3, *model.image_shape)
    assert float((ours - theirs).abs().max()) < TOL
    assert float(theirs.std()) > 0.05                    # pictures, not a constant: the comparison means something
    frames = list(model.frames(x_T, sampler="ddim", steps=steps))            # the app's path: the same run
    assert float((frames[-1].x0 - ours).abs().max()) < 1e-6


def test_a_class_conditional_unet_takes_its_classes_and_matches_diffusers(tmp_path):
    unet = tiny_unet(1, 8, classes=3)
    folder = save_pipeline(tmp_path / "cond", unet, num_train_timesteps=100, beta_schedule="squaredcos_cap_v2")
    model = ck.load(folder, "cpu")
    assert (model.conditional, model.null_class, model.has_null_class) == (True, 3, False)
    x_T = x_T_for(model, 4)
    y = torch.tensor([0, 1, 2, 1])
    ours = model.sample_from(x_T, 8, classes=y)
    assert float((ours - diffusers_ddim(folder, unet, x_T, 8, y)).abs().max()) < TOL
    assert float((model.sample_from(x_T, 8, classes=2) - ours).abs().max()) > 1e-3     # the class matters
    for asked, words in ((dict(classes=None), "no 'no class' input"), (dict(classes=3), "0..2"),
                         (dict(classes=1, guidance=2.0), "no guidance")):
        with pytest.raises(ValueError, match=words):
            model.sample_from(x_T, 4, **asked)


@pytest.mark.parametrize("prediction", ["epsilon", "sample", "v_prediction"])
def test_dpm_solver_works_for_every_prediction_type(prediction, tmp_path):
    from diffusers import DPMSolverMultistepScheduler

    unet = tiny_unet(3, 8)
    folder = save_pipeline(tmp_path / prediction, unet, num_train_timesteps=100, prediction_type=prediction,
                           clip_sample=False)
    model = ck.load(folder, "cpu")
    x_T = x_T_for(model)
    with torch.no_grad():
        frames = list(model.raw_frames(x_T, sampler="dpm++", steps=8))
    config = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
    sc = DPMSolverMultistepScheduler.from_config(config, algorithm_type="dpmsolver++", solver_order=2,
                                                 lower_order_final=True, final_sigmas_type="zero")
    sc.set_timesteps(timesteps=[f.t for f in frames])
    x = x_T.clone()
    with torch.no_grad():
        for t in sc.timesteps:
            x = sc.step(unet(x, t).sample, t, x).prev_sample
    assert float((frames[-1].x0 - x).abs().max()) < 2 * TOL         # in [-1, 1]: 1e-3 in [0, 1]


@pytest.mark.parametrize("sampler", ["ddpm", "ddim", "dpm++"])
def test_python_m_models_sample_and_info_take_a_folder(sampler, tmp_path, capsys):
    folder, _ = build(tmp_path, "colour-v-cosine")
    out = tmp_path / "s.npy"
    assert main(["sample", str(folder), "--n", "2", "--sampler", sampler, "--steps", "4", "--out", str(out),
                 "--device", "cpu"]) == 0
    import numpy as np

    images = np.load(out)
    assert images.shape == (2, 3, 16, 16) and images.dtype == np.float32 and 0 <= images.min() <= images.max() <= 1
    assert main(["info", str(folder)]) == 0
    text = capsys.readouterr().out
    assert "diffusers" in text and "3 x 16 x 16" in text and "v_prediction" in text


def test_ddim_inversion_walks_the_folders_own_steps_back(tmp_path):
    """invert(x) runs DDIM backwards over the steps decode walks forwards (the folder's trailing spacing, starting
    from alpha_bar_0), giving the x_T diffusers' own DDIMInverseScheduler gives from the folder's config."""
    from diffusers import DDIMInverseScheduler

    folder, unet = build(tmp_path, "grey-ddim-trailing-scaled")
    model = ck.load(folder, "cpu")
    x = torch.rand(2, *model.image_shape, generator=torch.Generator().manual_seed(0))
    z = model.invert(x, steps=5)
    assert z.shape == (2, model.latent_dim) and bool(torch.isfinite(z).all())
    pairs = model.step_pairs("ddim", 5)
    assert [t for t, _ in pairs] == [99, 79, 59, 39, 19] and pairs[-1][1] == 0     # trailing; alpha_bar_0 last
    sc = DDIMInverseScheduler.from_config(json.loads((folder / "scheduler" / "scheduler_config.json").read_text()))
    sc.set_timesteps(5)
    theirs = 2 * x - 1
    with torch.no_grad():
        for t in sc.timesteps:
            theirs = sc.step(unet(theirs, t).sample, t, theirs).prev_sample
    assert float((z.view_as(theirs) - theirs).abs().max()) < TOL


@pytest.mark.parametrize("variance", ["fixed_small", "fixed_large"])
def test_the_ancestral_sampler_gives_what_diffusers_ddpm_gives_for_the_same_noise(variance, tmp_path):
    """DDPMScheduler draws one noise a step from the generator, in the order our sampler does: so from one seed
    both runs see the same noise, and the variance type decides how much of it goes in."""
    from diffusers import DDPMScheduler

    unet = tiny_unet(1, 8)
    folder = save_pipeline(tmp_path / variance, unet, num_train_timesteps=40, variance_type=variance)
    model = ck.load(folder, "cpu")
    x_T = x_T_for(model)
    ours = list(model.raw_frames(x_T, torch.Generator().manual_seed(5), sampler="ddpm"))[-1].x0
    sc = DDPMScheduler.from_config(json.loads((folder / "scheduler" / "scheduler_config.json").read_text()))
    sc.set_timesteps(40)
    x, gen = x_T.clone(), torch.Generator().manual_seed(5)
    with torch.no_grad():
        for t in sc.timesteps:
            x = sc.step(unet(x, t).sample, t, x, generator=gen).prev_sample
    assert float((ours - x).abs().max()) < 2 * TOL
    other = "fixed_large" if variance == "fixed_small" else "fixed_small"
    _edit(folder / "scheduler" / "scheduler_config.json", variance_type=other)
    changed = list(ck.load(folder, "cpu").raw_frames(x_T, torch.Generator().manual_seed(5), sampler="ddpm"))[-1].x0
    assert float((changed - x).abs().max()) > 10 * TOL          # the setting is read, not ignored


def test_a_short_schedule_with_an_offset_samples_with_every_default(tmp_path, capsys):
    """T = 20 with steps_offset 1: DDIM's 50 steps, DPM-Solver++'s 20 and decode's 20 would start past step 19, so
    each default is the most steps the folder's spacing allows instead of a ValueError."""
    folder = save_pipeline(tmp_path / "short", tiny_unet(1, 8), num_train_timesteps=20, steps_offset=1)
    model = ck.load(folder, "cpu")
    assert model.decode(torch.randn(2, model.latent_dim)).shape == (2, 1, 8, 8)
    for sampler, total in (("ddim", 19), ("dpm++", 19), ("ddpm", 20)):           # ancestral: every step, T
        frames = list(model.frames(2, torch.Generator().manual_seed(0), sampler=sampler))
        assert len(frames) == total and frames[0].t == 19, sampler
    assert main(["sample", str(folder), "--n", "2", "--out", str(tmp_path / "s.npy")]) == 0
    assert model.fit_steps(50) == model.config.decode_steps == 19
    longer = save_pipeline(tmp_path / "offset-2", tiny_unet(1, 8), num_train_timesteps=100, steps_offset=2)
    assert ck.load(longer, "cpu").fit_steps(50) == 49                    # 50 would start at 49 * 2 + 2 = 100
    with pytest.raises(ValueError, match="fewer steps"):
        list(model.frames(1, sampler="ddim", steps=20))              # asked for, it is still refused


def test_a_class_conditional_folder_on_the_command_line(tmp_path, capsys):
    folder = save_pipeline(tmp_path / "cond", tiny_unet(1, 8, classes=3), num_train_timesteps=50)
    out = tmp_path / "s.png"
    assert main(["sample", str(folder), "--n", "2", "--steps", "3", "--class", "2", "--out", str(out)]) == 0
    capsys.readouterr()
    for flags, words in ((["--class", "1", "--guidance", "2"], "guidance"), ([], "--class"),
                         (["--class", "3"], "0..2")):
        assert main(["sample", str(folder), "--n", "2", "--steps", "3", "--out", str(out), *flags]) == 2
        err = capsys.readouterr().err
        assert words in err and len(err.strip().splitlines()) == 1, err


def test_a_bare_unet_folder_with_its_scheduler_config_opens_and_so_do_its_files(tmp_path):
    unet = tiny_unet(1, 8)
    folder = save_bare_unet(tmp_path / "bare", unet, num_train_timesteps=50)
    model = ck.load(folder, "cpu")
    x_T = x_T_for(model)
    for path in (folder / "config.json", folder / "diffusion_pytorch_model.safetensors"):
        assert float((ck.load(path, "cpu").sample_from(x_T, 5) - model.sample_from(x_T, 5)).abs().max()) == 0
    pipe = save_pipeline(tmp_path / "pipe", unet, num_train_timesteps=50)
    for path in (pipe / "model_index.json", pipe / "unet"):               # the pipeline's UNet folder on its own too
        assert ck.read_metadata(path).image_shape == (1, 8, 8)


def test_a_hub_cache_snapshot_of_links_opens(tmp_path):
    folder, _ = build(tmp_path, "grey-epsilon-linear")
    blobs, snapshot = tmp_path / "blobs", tmp_path / "snapshots" / "abc123"
    blobs.mkdir()
    for i, file in enumerate(sorted(p for p in folder.rglob("*") if p.is_file())):
        blob = blobs / f"blob{i}"
        file.rename(blob)
        link = snapshot / file.relative_to(folder)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    model = ck.load(snapshot, "cpu")
    assert model.image_shape == (1, 8, 8) and model.sample_from(x_T_for(model), 3).shape == (3, 1, 8, 8)


def test_weights_saved_with_diffusers_old_attention_names_open(tmp_path):
    """Folders saved before diffusers renamed its attention layers (query, key, value, proj_attn) still open."""
    from safetensors.torch import load_file, save_file

    folder, unet = build(tmp_path, "grey-epsilon-linear")
    path = folder / "unet" / "diffusion_pytorch_model.safetensors"
    old = {".to_q.": ".query.", ".to_k.": ".key.", ".to_v.": ".value.", ".to_out.0.": ".proj_attn."}
    tensors = {}
    for key, value in load_file(path).items():
        for new_name, old_name in old.items():
            key = key.replace(new_name, old_name)
        tensors[key] = value
    assert any(".query." in k for k in tensors)
    save_file(tensors, path)
    model = ck.load(folder, "cpu")
    x_T = x_T_for(model)
    assert float((model.sample_from(x_T, 5) - diffusers_ddim(folder, unet, x_T, 5)).abs().max()) < TOL


def test_pickled_weights_are_refused_until_imported_and_the_import_samples_the_same(tmp_path, capsys):
    from diffusers import DDPMPipeline, DDPMScheduler

    unet = tiny_unet(1, 8)
    folder = tmp_path / "pickled"
    DDPMPipeline(unet=unet, scheduler=DDPMScheduler(num_train_timesteps=50)).save_pretrained(
        folder, safe_serialization=False)
    assert (folder / "unet" / "diffusion_pytorch_model.bin").exists()
    assert main(["info", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "pickle" in err and f"python -m models import {folder}" in err and len(err.strip().splitlines()) == 1
    assert main(["import", str(folder)]) == 0
    assert "diffusion_pytorch_model.safetensors" in capsys.readouterr().out
    model = ck.load(folder, "cpu")
    x_T = x_T_for(model)
    assert float((model.sample_from(x_T, 5) - diffusers_ddim(folder, unet, x_T, 5)).abs().max()) < TOL


def test_weights_that_are_no_safetensors_file_are_sniffed_not_read_whole(tmp_path, monkeypatch):
    """A weights name linked into something huge (a disk image, a blob of another kind) says what it is from its
    first bytes: reading it whole to say so would exhaust memory."""
    from test_checkpoint import count_bytes_read

    folder = save_pipeline(tmp_path / "blob", tiny_unet(1, 8), num_train_timesteps=50)
    weights = folder / "unet" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(b"\x01" * 2 ** 20)
    monkeypatch.setattr(ck, "SNIFF_BYTES", 4096, raising=False)
    counts = count_bytes_read(monkeypatch)
    with pytest.raises(ck.NotSafetensorsError):
        ck.read_metadata(folder)
    assert 0 < counts[weights.name] <= 4096, counts


def test_pickled_weights_larger_than_their_config_allows_are_refused_unread(tmp_path, capsys):
    folder = save_pipeline(tmp_path / "padded", tiny_unet(1, 8), num_train_timesteps=50)
    (folder / "unet" / "diffusion_pytorch_model.safetensors").unlink()
    with (folder / "unet" / "diffusion_pytorch_model.bin").open("wb") as fh:
        fh.truncate(200 * 2 ** 20)                   # sparse: 200 MiB that cost no disk, for a 45,000-weight UNet
    assert main(["import", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "diffusion_pytorch_model.bin is 200.0 MiB" in err and "44,969 weights" in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


class Payload:
    """What a hostile pickle runs when it is loaded with plain pickle: it writes a file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_with_a_code_payload_is_refused_and_nothing_runs(tmp_path, capsys):
    folder = save_pipeline(tmp_path / "evil", tiny_unet(1, 8), num_train_timesteps=50)
    weights = folder / "unet" / "diffusion_pytorch_model.safetensors"
    weights.unlink()
    marker = tmp_path / "ran"
    (folder / "unet" / "diffusion_pytorch_model.bin").write_bytes(pickle.dumps({"conv_in.weight": Payload(marker)}))
    assert main(["import", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "refused" in err and len(err.strip().splitlines()) == 1
    assert not marker.exists() and not weights.exists()


# --- bad folders: one sentence, exit 2, nothing built -----------------------------------------------------------

def _edit(path: Path, **changes) -> None:
    cfg = json.loads(path.read_text())
    cfg.update(changes)
    path.write_text(json.dumps(cfg))


def _nan_weights(folder: Path) -> None:
    from safetensors.torch import load_file, save_file

    path = folder / "unet" / "diffusion_pytorch_model.safetensors"
    tensors = load_file(path)
    tensors["conv_out.bias"][0] = float("nan")
    save_file(tensors, path)


def _truncate(folder: Path) -> None:
    path = folder / "unet" / "diffusion_pytorch_model.safetensors"
    path.write_bytes(path.read_bytes()[:-1000])


def _link_config_to_weights(folder: Path) -> None:
    (folder / "unet" / "config.json").unlink()
    (folder / "unet" / "config.json").symlink_to(folder / "unet" / "diffusion_pytorch_model.safetensors")


def _fifo_config(folder: Path) -> None:
    (folder / "scheduler" / "scheduler_config.json").unlink()
    os.mkfifo(folder / "scheduler" / "scheduler_config.json")


def _dangle(path: Path) -> None:
    path.unlink()
    path.symlink_to(path.parent / "gone.safetensors")


UNET_CFG = ("unet", "config.json")
SCHED_CFG = ("scheduler", "scheduler_config.json")
BAD = {
    "channels disagree": (lambda f: _edit(f.joinpath(*UNET_CFG), in_channels=3, out_channels=3),
                          "shape"),
    "widths disagree": (lambda f: _edit(f.joinpath(*UNET_CFG), block_out_channels=[16, 16]), "do not match"),
    "learned variance": (lambda f: _edit(f.joinpath(*UNET_CFG), out_channels=2), "out_channels"),
    "huge picture": (lambda f: _edit(f.joinpath(*UNET_CFG), sample_size=1_000_000), "pictures"),
    "huge widths": (lambda f: _edit(f.joinpath(*UNET_CFG), block_out_channels=[10 ** 6, 10 ** 6]), "channels"),
    "huge network": (lambda f: _edit(f.joinpath(*UNET_CFG), block_out_channels=[16384, 16384], norm_num_groups=8,
                                     layers_per_block=16), "parameters"),
    "unet config not JSON": (lambda f: f.joinpath(*UNET_CFG).write_text("{'sample_size': 8,"), "not valid JSON"),
    "scheduler config not JSON": (lambda f: f.joinpath(*SCHED_CFG).write_text('{"beta_start": NaN}'),
                                  "not valid JSON"),
    "unet config nested too deep": (lambda f: f.joinpath(*UNET_CFG).write_text("[" * 100_000), "nest"),
    "weights header nested too deep": (lambda f: f.joinpath("unet", "diffusion_pytorch_model.safetensors")
                                       .write_bytes(struct.pack("<Q", 100_005) + b'{"a":' + b"[" * 100_000),
                                       "not a valid safetensors file"),
    "config links to the weights": (_link_config_to_weights, "not a JSON file"),
    "config is a pipe": (_fifo_config, "not a regular file"),
    "model_index not JSON": (lambda f: (f / "model_index.json").write_bytes(b"\x80\x04 not json"), "JSON"),
    "weights link to nothing": (lambda f: _dangle(f / "unet" / "diffusion_pytorch_model.safetensors"),
                                "a link to nothing"),
    "unknown pipeline": (lambda f: _edit(f / "model_index.json", _class_name="StableDiffusionPipeline"),
                         "StableDiffusionPipeline"),
    "unknown beta_schedule": (lambda f: _edit(f.joinpath(*SCHED_CFG), beta_schedule="sigmoid"), "beta_schedule"),
    "unknown prediction_type": (lambda f: _edit(f.joinpath(*SCHED_CFG), prediction_type="flow"), "prediction_type"),
    "thresholding": (lambda f: _edit(f.joinpath(*SCHED_CFG), thresholding=True), "thresholding"),
    "learned variance_type": (lambda f: _edit(f.joinpath(*SCHED_CFG), variance_type="learned_range"),
                              "variance_type"),
    "a VE-SDE scheduler": (lambda f: _edit(f.joinpath(*SCHED_CFG), _class_name="ScoreSdeVeScheduler"),
                           "ScoreSdeVeScheduler"),
    "a flow-matching scheduler": (lambda f: _edit(f.joinpath(*SCHED_CFG),
                                                  _class_name="FlowMatchEulerDiscreteScheduler"), "_class_name"),
    "betas past 1": (lambda f: _edit(f.joinpath(*SCHED_CFG), beta_end=1.5), "beta_end"),
    "truncated weights": (_truncate, "truncated"),
    "missing weights": (lambda f: f.joinpath("unet", "diffusion_pytorch_model.safetensors").unlink(), "no weights"),
    "NaN weights": (_nan_weights, "NaN"),
    "no scheduler": (lambda f: f.joinpath(*SCHED_CFG).unlink(), "missing"),
    "empty folder": (lambda f: [p.unlink() for p in f.rglob("*") if p.is_file()], "not a checkpoint file"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_folder_is_one_sentence_and_exit_2(case, tmp_path, capsys):
    spoil, words = BAD[case]
    folder = save_pipeline(tmp_path / "bad", tiny_unet(1, 8), num_train_timesteps=50)
    spoil(folder)
    assert main(["info", str(folder)]) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1 and "Traceback" not in err, err
    with pytest.raises(ck.CheckpointError):
        ck.load(folder, "cpu")


def test_launching_imports_no_diffusers_and_opening_a_checkpoint_neither(tmp_path):
    """diffusers loads only when a diffusers folder is opened (the app's start-up time depends on it)."""
    code = ("import sys, models.checkpoint, models.diffusers_folder, models.cli; "
            "from models.checkpoint import read_metadata; "
            f"read_metadata({str(Path(__file__).parents[1] / 'weights' / 'ddpm.safetensors')!r}); "
            "assert 'diffusers' not in sys.modules, 'diffusers was imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
