"""Device names from configs and flags: ``auto`` (CUDA when present), ``cpu``, ``cuda``, ``cuda:K``."""
import os
import re

import torch

_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def resolve_device(name="auto", field="--device"):
    """The torch.device a name stands for; a clear error for a malformed name or a missing GPU."""
    if not isinstance(name, str) or not _PATTERN.match(name):
        raise ValueError(f"{field} must be 'auto', 'cpu', 'cuda' or 'cuda:K', got {name!r}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{field}={name} but CUDA is not available on this machine; use 'cpu' or 'auto'")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"{field}={name} but this machine has {torch.cuda.device_count()} CUDA device(s)")
    return device


def describe_device(device):
    """What a run's minutes were measured on: the GPU's name, or 'CPU, N threads'."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    threads = torch.get_num_threads()
    return f"CPU, {threads} thread{'s' if threads > 1 else ''}"


def set_cpu_threads(threads=None):
    """torch's CPU threads: ``threads``, or the cores divided among the processes torchrun started,
    so that K processes on a small machine do not oversubscribe it (a 0.12 s step became 2-4 s).
    An explicit OMP_NUM_THREADS wins over the default."""
    if threads is None:
        if "OMP_NUM_THREADS" in os.environ:
            return torch.get_num_threads()
        processes = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ.get("WORLD_SIZE", "1")))
        threads = max(1, (os.cpu_count() or 1) // processes)
    if threads < 1:
        raise ValueError(f"--threads must be >= 1, got {threads}")
    torch.set_num_threads(threads)
    return threads
