"""Crash-safe checkpoints: atomic writes, the last K kept, fallback past a corrupt file.

A checkpoint is a plain dict of tensors, numbers and strings, loaded with
``torch.load(..., weights_only=True)``: nothing in it can run code.
"""
import json
import logging
import os
import random
import re
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger(__name__)
_NAME = re.compile(r"^checkpoint_(\d+)\.pt$")


def atomic_save(obj, path):
    """torch.save to a temp file in the same folder, fsync, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as handle:
        torch.save(obj, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def checkpoint_paths(directory):
    """Checkpoints in ``directory``, oldest step first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def save_checkpoint(directory, step, state, keep=3):
    """Write ``checkpoint_<step>.pt`` atomically and delete all but the newest ``keep``."""
    path = Path(directory) / f"checkpoint_{step:08d}.pt"
    atomic_save(state, path)
    for old in checkpoint_paths(directory)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def load_checkpoint(path, map_location="cpu"):
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as error:  # truncated, garbage, or holding objects that are not plain data
        raise ValueError(f"checkpoint {path} cannot be read: {error}") from error


def load_latest(directory, map_location="cpu"):
    """(state, path) of the newest readable checkpoint, warning about any corrupt newer one; None if none."""
    for path in reversed(checkpoint_paths(directory)):
        try:
            return load_checkpoint(path, map_location), path
        except ValueError as error:
            log.warning("%s; falling back to the previous checkpoint", error)
    return None


def rng_state():
    """Every RNG the run draws from: python, numpy, torch CPU and CUDA."""
    numpy_state = np.random.get_state()
    return {
        "python": json.dumps(random.getstate()),
        "numpy": {"keys": torch.from_numpy(numpy_state[1].astype(np.int64)), "pos": int(numpy_state[2]),
                  "has_gauss": int(numpy_state[3]), "cached_gaussian": float(numpy_state[4])},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state):
    version, internal, gauss = json.loads(state["python"])
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
