"""Training batches as pure functions of (seed, step): the data order, the flips, t and eps.

The batch of step s is a slice of an epoch permutation drawn from the run's ``data_order`` stream;
its flips and its t and eps come from the ``flip`` and ``step_noise`` streams at index s, drawn for
the *global* batch and sliced per rank (``sde_edge.rng``), so that a resumed run and a K-rank
torchrun run see exactly the images and noise of a single uninterrupted run.
"""
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import torch

from sde_edge.rng import stream_generator


class BatchSource:
    """Global batches by step: slice ``step`` of a per-epoch permutation from the ``data_order`` stream;
    ``batch(step)`` returns this rank's share on the device. With ``workers > 0`` threads load the
    next ``workers`` batches while the network trains (pinned on CUDA); which images a step gets
    stays a function of (seed, step) alone. ``waited`` sums the seconds a step waited for its data."""

    def __init__(self, dataset, batch_size, seed, device, rank_slice=slice(None), workers=0):
        if len(dataset) < batch_size:
            raise ValueError(f"training.batch_size={batch_size} exceeds the {len(dataset)} training images")
        device = torch.device(device)
        self.dataset = dataset.to(device) if hasattr(dataset, "to") else dataset
        self.batch_size, self.seed, self.device, self.rank_slice = batch_size, seed, device, rank_slice
        self.per_epoch = len(dataset) // batch_size
        self.workers, self.waited = workers, 0.0
        self._orders, self._lock, self._pending = {}, threading.Lock(), {}
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="batches") if workers else None

    def indices(self, step):
        """The global batch's dataset indices at ``step``."""
        epoch, index = divmod(step, self.per_epoch)
        with self._lock:
            if epoch not in self._orders:
                self._orders = {e: o for e, o in self._orders.items() if e >= epoch - 1}
                generator = stream_generator(self.seed, "data_order", epoch)
                self._orders[epoch] = torch.randperm(len(self.dataset), generator=generator)
            order = self._orders[epoch]
        return order[index * self.batch_size : (index + 1) * self.batch_size]

    def _load(self, step):
        images = self.dataset.batch(self.indices(step)[self.rank_slice])
        return images.pin_memory() if self.device.type == "cuda" and images.device.type == "cpu" else images

    def batch(self, step):
        """This rank's images of ``step``, on the device."""
        started = time.perf_counter()
        if self._pool is None:
            images = self._load(step)
        else:
            for ahead in range(step, step + self.workers + 1):
                if ahead not in self._pending:
                    self._pending[ahead] = self._pool.submit(self._load, ahead)
            images = self._pending.pop(step).result()
            for stale in [s for s in self._pending if s < step]:
                self._pending.pop(stale).cancel()
        self.waited += time.perf_counter() - started
        return images.to(self.device, non_blocking=True)

    def close(self):
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def random_flips(x0, seed, step, rank_slice, global_batch):
    """Mirror each image of the global batch of ``step`` left-right with probability 1/2, drawn from
    the ``flip`` stream at index ``step`` for the whole global batch and sliced per rank, so that a
    resumed run and a torchrun run flip exactly the same images."""
    flip = torch.rand(global_batch, generator=stream_generator(seed, "flip", step))[rank_slice] < 0.5
    return torch.where(flip.to(x0.device)[:, None, None, None], x0.flip(-1), x0)


def rank_slice(ctx, batch_size):
    if batch_size % ctx.world_size:
        raise ValueError(
            f"training.batch_size={batch_size} must be divisible by the {ctx.world_size} torchrun processes"
        )
    local = batch_size // ctx.world_size
    return slice(ctx.rank * local, (ctx.rank + 1) * local)


def draw_noise(loss, seed, stream, index, shape, device):
    """t, importance weights and eps for a batch of ``shape``, from stream (seed, stream, index)."""
    generator = stream_generator(seed, stream, index, device)
    t, importance = loss.sample_times(shape[0], generator=generator, device=device)
    eps = torch.randn(shape, generator=generator, device=device)
    return t, importance, eps
