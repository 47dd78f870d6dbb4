"""A run folder that one process owns: a kernel-held lock and a writability check before any work."""
import errno
import fcntl
import os
from contextlib import contextmanager
from pathlib import Path


class WorkdirBusyError(RuntimeError):
    """Another process holds the run folder."""


def ensure_writable(folder, what="--workdir"):
    """Create ``folder`` if needed and prove that a file can be written in it, or raise an
    OSError-free ValueError naming it (a file in its place, read-only, full disk)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{what} {folder} is a file, not a folder")
    probe = folder / f".write_probe_{os.getpid()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"ok")
    except OSError as error:
        reason = "no space left on device" if error.errno == errno.ENOSPC else (error.strerror or str(error))
        raise ValueError(f"{what} {folder} is not writable: {reason}") from error
    finally:
        probe.unlink(missing_ok=True)
    return folder


class WorkdirLock:
    """An exclusive advisory lock on ``folder/.lock`` (flock: the kernel drops it when the process
    dies, so a killed run never leaves a stale lock). The file holds the owner's PID."""

    def __init__(self, folder):
        self.path = Path(folder) / ".lock"
        self._handle = None

    def acquire(self):
        handle = open(self.path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "unknown"
            handle.close()
            raise WorkdirBusyError(f"{self.path.parent} is in use by another sde-edge process (PID {owner}); "
                                   "wait for it to finish, or stop it, or use another --workdir") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._handle = handle
        return self

    def release(self):
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def cache_root():
    """Where trained classifiers and prepared datasets are kept: $SDE_EDGE_CACHE, else ~/.cache/sde_edge."""
    return Path(os.environ.get("SDE_EDGE_CACHE", Path.home() / ".cache" / "sde_edge"))


@contextmanager
def waiting_lock(path):
    """Hold an exclusive flock on ``path`` (created if need be), waiting for any other holder: for
    work that two processes must not do at once, such as filling a shared cache."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
