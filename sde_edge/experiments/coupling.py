"""Coupled comparisons: every setting's step noise read from one Brownian path per draw.

Paired from the same initial noise alone, a stochastic sampler and the reference (``ddpm``@500)
still draw independent noise at their steps, so the paired difference of their FDs carries the two
noises' difference: on 16 px digits its error was about as large as the unpaired one. With a
``SharedPath`` every setting starts from the same prior draws and reads its steps' noise from the
same Brownian path per draw (``sampling/brownian.py``, on the SNR clock): the path the reference
reads on its own grid, replayed into a fresh ``BrownianNoise`` for each setting, so a setting's
noise does not depend on which settings ran before it (a resumed comparison gives the same rows).
Each setting's samples keep exactly their law; only the pairs are closer, so the paired difference
of FDs estimates the same quantity with a smaller error. A deterministic sampler reads no noise and
is paired by its initial noise as before; one whose noise is not a time step's (a Langevin
corrector, EDM's churn) cannot be driven by the path and is skipped with that reason.
"""
from dataclasses import dataclass

import torch

from sde_edge.rng import stream_seed
from sde_edge.sampling import SAMPLERS
from sde_edge.sampling.brownian import BrownianNoise, snr_clock
from sde_edge.sampling.grids import time_grid


@dataclass(frozen=True)
class SharedPath:
    """The prior draws of ``seed`` and the Brownian path that ``reference`` (a sampler name and its
    steps, on the uniform grid) reads, for ``shape`` draws of ``sde``."""

    sde: object
    shape: tuple
    seed: int
    reference: tuple

    @property
    def key(self):
        """What a cached setting of a coupled comparison is also keyed by."""
        name, steps = self.reference
        return {"path": "snr clock", "replays": f"{name}@{steps}", "path_seed": self.seed}

    def start(self):
        """(the prior draws as pixels, a fresh path already read at the reference's steps)."""
        generator = torch.Generator().manual_seed(self.seed)  # the uncoupled comparison's prior draws
        x_init = self.sde.from_basis(self.sde.prior_sampling(self.shape, generator=generator))
        path = BrownianNoise(self.shape, stream_seed(self.seed, "comparison-path"), clock=snr_clock(self.sde))
        name, steps = self.reference
        t_end = self.sde.t_eps if SAMPLERS[name].continuous_time else 0.0
        # in the samples' precision, as ``sample`` builds the grid: its reads then hit these points exactly
        times = time_grid("uniform", steps, 1.0, t_end, sde=self.sde, dtype=torch.float32).tolist()
        for t, s in zip(times[:-1], times[1:]):  # the reads of the reference's steps, in its order
            span = path.step_span(t, s)
            if span is not None:
                path.increment(*span)
        return x_init, path
