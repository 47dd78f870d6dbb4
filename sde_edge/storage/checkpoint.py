"""Crash-safe, integrity-checked checkpoints.

A checkpoint is a plain dict of tensors, numbers and strings, loaded with
``torch.load(..., weights_only=True)``: nothing in it can run code. It carries a
SHA-256 digest of its payload (torch does not check the zip's CRCs, so one
flipped byte in a weight would otherwise load silently), and it is written
atomically: serialised in memory, written to a temp file in the same folder,
fsynced, renamed. A failed write removes its temp file and leaves the previous
checkpoint as it was.

Rotation keeps the newest ``keep`` checkpoints at or below the step just written,
plus every multiple of ``keep_every`` (milestones, for convergence curves). A file
that does not verify is renamed ``*.corrupt`` (kept for inspection, out of the
rotation) when a run resumes past it.
"""
import errno
import hashlib
import io
import json
import logging
import os
import random
import re
from pathlib import Path

import numpy as np
import torch

from sde_edge.storage.workdir import waiting_lock

log = logging.getLogger(__name__)
_NAME = re.compile(r"^checkpoint_(\d+)\.pt$")
_TEMP = re.compile(r"^\.checkpoint_\d+\.pt\.tmp(\d+)$")
CHECKSUM_KEY = "sha256"


class CheckpointError(ValueError):
    """A checkpoint cannot be read, does not verify, or cannot be written."""


def payload_digest(state):
    """SHA-256 over a canonical walk of ``state`` (keys sorted; tensors by dtype, shape and bytes)."""
    digest = hashlib.sha256()

    def walk(node):
        if isinstance(node, dict):
            digest.update(b"{")
            for key in sorted(node, key=str):
                digest.update(repr(key).encode() + b":")
                walk(node[key])
            digest.update(b"}")
        elif isinstance(node, (list, tuple)):
            digest.update(b"[")
            for item in node:
                walk(item)
            digest.update(b"]")
        elif isinstance(node, torch.Tensor):
            tensor = node.detach().cpu().contiguous()
            digest.update(f"T{tensor.dtype}{tuple(tensor.shape)}".encode())
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
        else:
            digest.update(f"{type(node).__name__}:{node!r}".encode())

    walk(state)
    return digest.hexdigest()


def _temp_path(path):
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


def atomic_save(obj, path):
    """Serialise ``obj`` in memory, write it to a temp file beside ``path``, fsync, rename.

    Any failure (a full disk, a read-only folder) removes the temp file and raises a
    ``CheckpointError`` that names the path and says the previous file is intact.
    """
    path = Path(path)
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    tmp = _temp_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as handle:
            handle.write(buffer.getbuffer())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        reason = "no space left on device" if error.errno == errno.ENOSPC else (error.strerror or str(error))
        raise CheckpointError(f"cannot write {path}: {reason}; any earlier checkpoint beside it is intact") from error
    return path


def remove_stale_temp_files(directory):
    """Delete temp files left by checkpoint writes of processes that no longer run."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    removed = []
    for path in directory.iterdir():
        match = _TEMP.match(path.name)
        if match and not _process_alive(int(match.group(1))):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _process_alive(pid):
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def checkpoint_path(directory, step):
    """Where the checkpoint of ``step`` lives in ``directory`` (the one naming rule)."""
    return Path(directory) / f"checkpoint_{step:08d}.pt"


def checkpoint_step(path):
    return int(_NAME.match(Path(path).name).group(1))


def checkpoint_paths(directory):
    """Checkpoints in ``directory``, oldest step first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def save_checkpoint(directory, step, state, keep=3, keep_every=0):
    """Write ``checkpoint_<step>.pt`` with its digest, then rotate (see the module docstring)."""
    if not isinstance(keep, int) or keep < 1:
        raise ValueError(f"training.keep_checkpoints must be an integer >= 1, got {keep!r}")
    path = checkpoint_path(directory, step)
    atomic_save({**state, CHECKSUM_KEY: payload_digest(state)}, path)
    older = [p for p in checkpoint_paths(directory) if checkpoint_step(p) <= step]
    for old in older[:-keep]:
        if not (keep_every and checkpoint_step(old) % keep_every == 0):
            old.unlink(missing_ok=True)
    return path


def load_checkpoint(path, map_location="cpu"):
    """Load and verify one checkpoint; a CheckpointError names the file and what is wrong."""
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as error:  # truncated, garbage, or holding objects that are not plain data
        raise CheckpointError(f"checkpoint {path} cannot be read: {error}") from error
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(state).__name__}, not a dict")
    expected = state.pop(CHECKSUM_KEY, None)
    if expected is None:
        log.warning("checkpoint %s has no checksum (written by an older version); loading it unverified", path)
    elif payload_digest(state) != expected:
        raise CheckpointError(f"checkpoint {path} fails its checksum: its contents changed after it was written")
    return state


def load_latest(directory, map_location="cpu", quarantine=False):
    """(state, path) of the newest checkpoint that verifies, or None if there are no checkpoints.

    Newer files that do not verify are skipped with a warning (and renamed ``*.corrupt`` when
    ``quarantine``). If checkpoints exist but none verifies, raises a CheckpointError naming them.
    """
    paths = checkpoint_paths(directory)
    bad = []
    for path in reversed(paths):
        try:
            state = load_checkpoint(path, map_location)
        except CheckpointError as error:
            log.warning("%s; falling back to the previous checkpoint", error)
            bad.append(path)
            continue
        if quarantine:
            for corrupt in bad:
                corrupt.rename(corrupt.with_name(corrupt.name + ".corrupt"))
                log.warning("renamed %s to %s.corrupt", corrupt, corrupt.name)
        return state, path
    if bad:
        names = ", ".join(str(p) for p in reversed(bad))
        raise CheckpointError(f"no checkpoint in {directory} verifies ({names}); move them away, or pass "
                              "--restart to start this run afresh (the unreadable files are kept as *.corrupt)")
    return None


def quarantine_all(directory):
    """Rename every checkpoint in ``directory`` to ``*.corrupt`` (a deliberate fresh start)."""
    for path in checkpoint_paths(directory):
        path.rename(path.with_name(path.name + ".corrupt"))


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
    np.random.set_state(
        ("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    )
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def cached_state(path, build, use, what):
    """``use(state)`` of the state dict kept at ``path``, or of ``build()``'s, written there atomically
    with a checksum. One process builds while the others wait on a lock beside the file and then load
    it; a file that does not verify (or that ``use`` rejects) is built again, and a failed write only
    costs the next process a rebuild. ``what`` names it in the warnings."""
    path = Path(path)
    with waiting_lock(path.with_suffix(".lock")):
        if path.exists():
            try:
                return use(load_checkpoint(path))
            except (CheckpointError, KeyError, RuntimeError) as error:
                log.warning("%s cache %s is unusable (%s); building it again", what, path, error)
        state = build()
        try:
            atomic_save({**state, CHECKSUM_KEY: payload_digest(state)}, path)
        except CheckpointError as error:
            log.warning("could not cache the %s (%s); it will be built again next time", what, error)
    return use(state)
