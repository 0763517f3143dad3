"""Diffusion pieces with one job each: the noise schedule as data, the eps-predicting U-Net, and the samplers."""
from .samplers import (Frame, Step, ddim_frames, ddim_invert, ddim_step, ddpm_frames, ddpm_step, dpm_solver_frames,
                       dpm_solver_step, timesteps)
from .schedule import (NoiseSchedule, broadcast, cosine_schedule, linear_schedule, make_schedule,
                       predict_eps_from_x0, predict_x0_from_eps, q_sample, schedule_from_betas)
from .unet import UNet

__all__ = ["Frame", "NoiseSchedule", "Step", "UNet", "broadcast", "cosine_schedule", "ddim_frames", "ddim_invert",
           "ddim_step", "ddpm_frames", "ddpm_step", "dpm_solver_frames", "dpm_solver_step", "linear_schedule",
           "make_schedule", "predict_eps_from_x0", "predict_x0_from_eps", "q_sample", "schedule_from_betas",
           "timesteps"]
