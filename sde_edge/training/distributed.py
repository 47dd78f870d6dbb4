"""Process-group setup for ``torchrun --nproc_per_node=K``: nccl on CUDA, gloo on the CPU."""
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from sde_edge.devices import resolve_device


@dataclass(frozen=True)
class Context:
    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self):
        return self.rank == 0

    def _reduce(self, value, op):
        tensor = torch.tensor(
            float(value), device=self.device, dtype=torch.float64 if self.device.type == "cpu" else torch.float32
        )
        dist.all_reduce(tensor, op=op)
        return tensor.item()

    def all_true(self, flag):
        """True on every rank iff ``flag`` is true on every rank."""
        return bool(flag) if self.world_size == 1 else bool(self._reduce(bool(flag), dist.ReduceOp.MIN))

    def any_true(self, flag):
        """True on every rank iff ``flag`` is true on some rank."""
        return bool(flag) if self.world_size == 1 else bool(self._reduce(bool(flag), dist.ReduceOp.MAX))

    def mean(self, value):
        """The mean of a number over the ranks."""
        return float(value) if self.world_size == 1 else self._reduce(value, dist.ReduceOp.SUM) / self.world_size

    def barrier(self):
        if self.world_size > 1:
            dist.barrier()


def setup(device="auto"):
    """Join the process group torchrun describes in the environment, or run alone."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    chosen = resolve_device(device, field="device")
    if chosen.type == "cuda":
        chosen = torch.device("cuda", int(os.environ.get("LOCAL_RANK", chosen.index or 0)))
        torch.cuda.set_device(chosen)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if chosen.type == "cuda" else "gloo")
    return Context(rank, world_size, chosen)


def teardown():
    if dist.is_initialized():
        dist.destroy_process_group()
