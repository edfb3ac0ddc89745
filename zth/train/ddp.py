"""Process-group setup for ``torchrun``: one process per device, NCCL on GPUs, gloo on CPUs.

Without ``torchrun`` (no ``RANK`` in the environment) everything runs in one process and the
collective helpers are no-ops, so the same training script serves both cases.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from zth.sysinfo import pick_device


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits: its rank, the world size and its device."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: str = "cpu"

    @property
    def ddp(self) -> bool:
        """True when running under ``torchrun`` with an initialized process group."""
        return self.world_size > 1 or dist.is_initialized()

    @property
    def master(self) -> bool:
        """Rank 0 logs, evaluates samples and writes checkpoints."""
        return self.rank == 0

    @property
    def device_type(self) -> str:
        """``"cuda"`` or ``"cpu"`` (or ``"mps"``), for autocast and fused kernels."""
        return self.device.split(":")[0]


def init_distributed(device: str = "auto") -> DistInfo:
    """Join the ``torchrun`` process group if there is one, else describe a single process."""
    if "RANK" not in os.environ:
        return DistInfo(device=str(pick_device(device)))
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    device = str(pick_device(device))
    if device.startswith("cuda"):
        device = f"cuda:{local_rank}"
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    return DistInfo(rank=rank, local_rank=local_rank, world_size=world, device=device)


def cleanup_distributed() -> None:
    """Leave the process group (if one was joined)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum ``t`` over ranks, in place (gloo has no AVG op, so averages divide a sum)."""
    if dist.is_initialized():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def all_reduce_mean(t: torch.Tensor) -> torch.Tensor:
    """Average ``t`` over ranks, in place."""
    if dist.is_initialized():
        all_reduce_sum(t).div_(dist.get_world_size())
    return t


def all_gather_object(obj):
    """Every rank's ``obj`` as a list (``[obj]`` in a single process)."""
    if not dist.is_initialized():
        return [obj]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def any_rank(flag: bool) -> bool:
    """True on every rank when ``flag`` is true on any (so that all ranks stop at the same step)."""
    if not dist.is_initialized():
        return bool(flag)
    t = torch.tensor([1.0 if flag else 0.0])
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())
