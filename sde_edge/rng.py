"""Named random streams: every random draw of a run is a function of (seed, stream, index).

A run draws its data order, its per-step noise, its held-out batch and its sample grids
from separate streams, so that adding a draw to one never shifts another, and a resumed or
multi-process run sees exactly the numbers a single uninterrupted run would.
"""
import hashlib

import torch


def stream_seed(seed, stream, index=0):
    """A 63-bit seed for draw ``index`` of the stream named ``stream`` in a run seeded ``seed``."""
    digest = hashlib.sha256(f"sde_edge/{seed}/{stream}/{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def stream_generator(seed, stream, index=0, device="cpu"):
    """A torch.Generator on ``device`` seeded for (seed, stream, index)."""
    return torch.Generator(device).manual_seed(stream_seed(seed, stream, index))
