"""Process-group setup for ``torchrun --nproc_per_node=K``: nccl on CUDA, gloo on the CPU."""
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Context:
    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self):
        return self.rank == 0

    def all_true(self, flag):
        """True on every rank iff ``flag`` is true on every rank."""
        if self.world_size == 1:
            return bool(flag)
        value = torch.tensor(int(bool(flag)), device=self.device)
        dist.all_reduce(value, op=dist.ReduceOp.MIN)
        return bool(value.item())

    def barrier(self):
        if self.world_size > 1:
            dist.barrier()


def setup(device="auto"):
    """Join the process group torchrun describes in the environment, or run alone."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    use_cuda = torch.cuda.is_available() if device == "auto" else device.startswith("cuda")
    if use_cuda:
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        chosen = torch.device("cuda", local_rank)
        torch.cuda.set_device(chosen)
    else:
        chosen = torch.device("cpu" if device == "auto" else device)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return Context(rank, world_size, chosen)


def teardown():
    if dist.is_initialized():
        dist.destroy_process_group()
