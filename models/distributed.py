"""Training on several processes, started by torchrun: one global batch, split across ranks, one set of weights.

    torchrun --nproc_per_node 2 -m models train --family ae --latent-dim 2 --out ae.safetensors

Every rank starts from rank 0's weights, takes its own contiguous shard of each global batch (same seeded data
order everywhere), and before every optimizer step the gradients are averaged over all ranks. That is the
arithmetic of DistributedDataParallel, applied at the optimizer rather than by wrapping a module: each family
owns its training step, and some run several networks with several backward passes per step (a GAN's detective
and forger), which DDP's one-forward-one-backward wrapper does not fit. With equal shards the average of the
shards' mean gradients is the global batch's mean gradient, so k steps on 2 ranks at B/2 equal k steps on one
rank at B. Weights stay identical on every rank, so an EMA (the DDPM's) is kept the same everywhere too.

Backends: NCCL on CUDA, gloo on the CPU. BatchNorm becomes SyncBatchNorm on CUDA; on the CPU (where torch's
SyncBatchNorm does not run) each rank normalises with its own shard's statistics, and rank 0's running averages
are the ones saved. Rank 0 alone writes files. A rank that dies makes the others stop with a message: torchrun
ends them, and a collective that cannot complete fails after `LATENT_EXPLORER_DIST_TIMEOUT` seconds (default 60).
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .device import collective_device, rank_device

TIMEOUT_ENV = "LATENT_EXPLORER_DIST_TIMEOUT"


class DistributedError(RuntimeError):
    """The process group cannot run as asked (a batch that does not split, a rank that went away)."""


@dataclass(frozen=True)
class Group:
    """This process's place in a torchrun job."""

    rank: int
    world_size: int
    backend: str
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def join(device: torch.device) -> Group | None:
    """Join the torchrun job this process belongs to (None when it runs alone)."""
    if not launched_by_torchrun():
        return None
    import torch.distributed as dist

    backend = "nccl" if device.type == "cuda" else "gloo"
    timeout = datetime.timedelta(seconds=float(os.environ.get(TIMEOUT_ENV, "60")))
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, timeout=timeout)
    return Group(dist.get_rank(), dist.get_world_size(), backend, int(os.environ.get("LOCAL_RANK", "0")))


def leave(group: Group | None, together: bool = True) -> None:
    """Leave the job. `together` (a run that ended normally): wait at a barrier first, so no rank tears its
    connections down while another still writes or sends (gloo aborted a rank that left early)."""
    if group is not None:
        import torch.distributed as dist

        if dist.is_initialized():
            if together:
                dist.barrier()
            dist.destroy_process_group()


def local_device(device: torch.device, group: Group | None) -> torch.device:
    """On a box with several GPUs each rank takes its own: cuda:LOCAL_RANK."""
    return device if group is None else rank_device(device, group.local_rank)


def shard(idx: Tensor, group: Group | None) -> Tensor:
    """This rank's contiguous part of a global batch of indices."""
    if group is None:
        return idx
    if idx.numel() % group.world_size:
        raise DistributedError(f"a global batch of {idx.numel()} images does not split over {group.world_size} "
                               "processes; use a --batch-size that is a multiple of --nproc_per_node")
    per = idx.numel() // group.world_size
    return idx[group.rank * per:(group.rank + 1) * per]


def prepare(model: nn.Module, optimizers: dict[str, torch.optim.Optimizer], group: Group | None) -> nn.Module:
    """Make every rank start from rank 0's weights and average gradients before each optimizer step.

    Returns the model to train (with SyncBatchNorm on CUDA; the same object otherwise)."""
    if group is None:
        return model
    import torch.distributed as dist

    if group.backend == "nccl":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    with torch.no_grad():
        for tensor in (*model.parameters(), *model.buffers()):
            dist.broadcast(tensor, src=0)

    def average(optimizer: torch.optim.Optimizer, args, kwargs) -> None:
        for group_ in optimizer.param_groups:
            for p in group_["params"]:
                if p.grad is not None:
                    dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
                    p.grad.div_(group.world_size)

    for opt in optimizers.values():
        opt.register_step_pre_hook(average)
    return model


def agree(flags: list[bool], group: Group | None) -> list[bool]:
    """Whether ANY rank raised each flag (stop, save): every rank then does the same thing at the same step."""
    if group is None:
        return flags
    import torch.distributed as dist

    t = torch.tensor([int(f) for f in flags], dtype=torch.int64, device=collective_device(group.backend))
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return [bool(v) for v in t.tolist()]


def mean_values(values: dict[str, float], group: Group | None) -> dict[str, float]:
    """Each figure averaged over the ranks (every rank saw its own shard: the job's loss is their mean)."""
    if group is None or not values:
        return values
    import torch.distributed as dist

    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=collective_device(group.backend))
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return {k: v / group.world_size for k, v in zip(keys, t.tolist())}


def gather_states(state: Tensor, group: Group | None) -> list[Tensor]:
    """Every rank's noise-generator state (uint8), gathered on every rank, in rank order."""
    if group is None:
        return [state]
    import torch.distributed as dist

    on = state.to(collective_device(group.backend))
    parts = [torch.empty_like(on) for _ in range(group.world_size)]
    dist.all_gather(parts, on)
    return [p.cpu() for p in parts]


def noise_seed(seed: int, rank: int) -> int:
    """Rank r's training noise: rank 0 keeps the single-process seed, so a 1-process run is unchanged."""
    return seed if rank == 0 else seed * 1_000_003 + 7_919 * rank
