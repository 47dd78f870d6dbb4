"""The sampler registry and the ``sample`` entry point."""
from dataclasses import dataclass, field

import torch

from sde_edge.sampling.grids import time_grid

SAMPLERS = {}


def register_sampler(name, *, continuous_time=False):
    """Register ``fn`` under ``name``; continuous-time samplers refuse an SDE without a continuous form."""

    def wrap(fn):
        fn.continuous_time = continuous_time
        SAMPLERS[name] = fn
        return fn

    return wrap


class CountingModel:
    """Wraps a model and counts its evaluations (NFE)."""

    def __init__(self, model):
        self.model, self.parameterization, self.nfe = model, model.parameterization, 0

    def __call__(self, x, t):
        self.nfe += 1
        return self.model(x, t)


@dataclass
class SampleResult:
    samples: torch.Tensor  # (B, C, H, W), the final x0_hat
    nfe: int
    trajectory: list = field(default_factory=list)  # [(t, x_t)] when asked for


def sample(name, model, sde, shape, *, steps, generator=None, x_init=None, t_start=1.0, callback=None,
           progress=False, grid="uniform", return_trajectory=False, device=None, dtype=torch.float32, **options):
    """Draw samples with the sampler ``name`` (SPEC section 8).

    Starts from the prior at t = 1, or from ``x_init`` at ``t_start`` (the SDEdit hook),
    on the ``grid`` schedule with ``steps`` steps; ``options`` go to the sampler.
    """
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; choose one of {sorted(SAMPLERS)}")
    sampler = SAMPLERS[name]
    if sampler.continuous_time:
        sde.check_continuous()
    if not 0.0 < t_start <= 1.0:
        raise ValueError(f"t_start must lie in (0, 1], got {t_start!r}")
    if x_init is None:
        if generator is not None and device is None:
            device = generator.device
        x = sde.prior_sampling(shape, generator=generator, device=device, dtype=dtype)
    else:
        if tuple(x_init.shape) != tuple(shape):
            raise ValueError(f"x_init has shape {tuple(x_init.shape)}, expected {tuple(shape)}")
        x = x_init
    t_end = sde.t_eps if sampler.continuous_time else 0.0
    ts = time_grid(grid, steps, t_start, t_end, sde=sde, device=x.device, dtype=x.dtype)
    counting = CountingModel(model)
    trajectory = []

    def record(info):
        if return_trajectory:
            trajectory.append((float(info["t"]), info["x"].detach().clone()))
        if callback is not None:
            callback(info)

    with torch.no_grad():
        samples = sampler(counting, sde, x, ts, generator=generator, callback=record, progress=progress, **options)
    return SampleResult(samples, counting.nfe, trajectory)
