"""Training batches as pure functions of (seed, step): the data order, the flips, t and eps.

The batch of step s is a slice of an epoch permutation drawn from the run's ``data_order`` stream;
its flips and its t and eps come from the ``flip`` and ``step_noise`` streams at index s, drawn for
the *global* batch and sliced per rank (``sde_edge.rng``), so that a resumed run and a K-rank
torchrun run see exactly the images and noise of a single uninterrupted run.
"""
import torch

from sde_edge.rng import stream_generator


class BatchSource:
    """Global batches by step: slice ``step`` of a per-epoch permutation from the ``data_order`` stream."""

    def __init__(self, dataset, batch_size, seed, device):
        if len(dataset) < batch_size:
            raise ValueError(f"training.batch_size={batch_size} exceeds the {len(dataset)} training images")
        self.dataset = dataset.to(device) if hasattr(dataset, "to") else dataset
        self.batch_size, self.seed, self.device = batch_size, seed, device
        self.per_epoch = len(dataset) // batch_size
        self._epoch, self._order = None, None

    def indices(self, step):
        epoch, index = divmod(step, self.per_epoch)
        if epoch != self._epoch:
            self._epoch = epoch
            self._order = torch.randperm(len(self.dataset), generator=stream_generator(self.seed, "data_order", epoch))
        return self._order[index * self.batch_size : (index + 1) * self.batch_size]

    def fetch(self, indices):
        return self.dataset.batch(indices).to(self.device)


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
