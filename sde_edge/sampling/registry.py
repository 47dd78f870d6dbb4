"""The sampler registry and the ``sample`` entry point (paper_appendix/math.md, section 5).

A sampler is a plain function ``sampler(denoiser, y, ts, *, generator, report, progress, **options)``
that walks the decreasing grid ``ts`` on the process's basis coordinates y and returns the state
at ``ts[-1]``; ``sample`` does the rest once for all of them: the prior or ``x_init``, the basis
change, NFE counting, the callback and the final denoise (at t_eps for continuous-time samplers;
discrete ones end at t = 0, where the state is already x0_hat).
"""
import inspect
from dataclasses import dataclass, field

import torch

from sde_edge.sampling.grids import time_grid
from sde_edge.score import Denoiser
from sde_edge.tensors import check_images, is_brownian_path

SAMPLERS = {}
_STANDARD_ARGUMENTS = {"denoiser", "y", "ts", "generator", "report", "progress"}


def register_sampler(name, *, continuous_time=False, choices=None):
    """Register ``fn`` under ``name``. Its keyword options (beyond the standard arguments) and their
    defaults are read off its signature; ``choices`` names the allowed values of string options.
    Continuous-time samplers refuse an SDE without a continuous form."""

    def wrap(fn):
        fn.continuous_time = continuous_time
        fn.options = {p.name: p.default for p in inspect.signature(fn).parameters.values()
                      if p.name not in _STANDARD_ARGUMENTS}
        fn.choices = dict(choices or {})
        SAMPLERS[name] = fn
        return fn

    return wrap


def sampler_options(name):
    """{option: default} of a registered sampler."""
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; choose one of {sorted(SAMPLERS)}")
    return dict(SAMPLERS[name].options)


class CountingModel:
    """Wraps a model and counts its evaluations (NFE)."""

    def __init__(self, model):
        self.model, self.parameterization, self.nfe = model, model.parameterization, 0

    def __call__(self, x, t):
        self.nfe += 1
        return self.model(x, t)


class Reporter:
    """What a sampler calls at each step with (i, t, y before the step, its Denoised);
    ``active`` tells samplers whose solver hides the grid whether to reconstruct it."""

    def __init__(self, sde, callback=None, keep_trajectory=False):
        self.sde, self.callback, self.keep = sde, callback, keep_trajectory
        self.trajectory = []

    @property
    def active(self):
        return self.callback is not None or self.keep

    def __call__(self, i, t, y, denoised):
        if not self.active:
            return
        x = self.sde.from_basis(y)
        if self.keep:
            self.trajectory.append((float(t), x.detach().clone()))
        if self.callback is not None:
            self.callback({"i": i, "t": float(t), "x": x, "x0_hat": None if denoised is None else denoised.image})


@dataclass
class SampleResult:
    samples: torch.Tensor  # (B, C, H, W), the final x0_hat
    nfe: int
    trajectory: list = field(default_factory=list)  # [(t, x_t)] at the grid times, when asked for
    resumed_seconds: float = 0.0  # time spent on batches that earlier, killed runs finished (``partial``)


def _check_options(name, options):
    known = SAMPLERS[name].options
    for option in options:
        if option not in known:
            offered = ", ".join(sorted(known)) or "none"
            raise ValueError(f"sampler {name!r} takes no option {option!r} (its options: {offered})")


def _check_model_fits(model, shape, dtype):
    channels = getattr(model, "channels", None)
    if channels is not None and shape[1] != channels:
        raise ValueError(f"the model works on {channels}-channel images but the samples have shape {tuple(shape)}")
    if isinstance(model, torch.nn.Module):
        weight = next(model.parameters(), None)
        if weight is not None and weight.dtype != dtype:
            raise ValueError(f"the samples are {dtype} but the model's weights are {weight.dtype}; "
                             f"pass dtype={weight.dtype} (and cast x_init)")


def sample(name, model, sde, shape, *, steps, generator=None, x_init=None, t_start=1.0, callback=None,
           progress=False, grid="uniform", return_trajectory=False, device=None, dtype=None, **options):
    """Draw samples with the sampler ``name`` (paper_appendix/math.md, section 8).

    Starts from the prior at t = 1, or from ``x_init`` (pixel images) at ``t_start`` (the SDEdit
    hook), on the ``grid`` schedule with ``steps`` steps; ``options`` go to the sampler.
    ``callback`` gets {"i", "t", "x", "x0_hat"} at each grid time before its step (pixels).
    """
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; choose one of {sorted(SAMPLERS)}")
    sampler = SAMPLERS[name]
    _check_options(name, options)
    if sampler.continuous_time:
        sde.check_continuous()
    if not (isinstance(t_start, (int, float)) and 0.0 < t_start <= 1.0):
        raise ValueError(f"t_start must lie in (0, 1], got {t_start!r}")
    if len(tuple(shape)) != 4:
        raise ValueError(f"shape must be (B, C, H, W), got {tuple(shape)}")
    if x_init is None:
        if is_brownian_path(generator):
            raise ValueError("a BrownianNoise drives the steps' noise only: pass the prior draws as x_init")
        dtype = dtype or torch.float32
        if generator is not None and device is None:
            device = generator.device
        y = sde.prior_sampling(shape, generator=generator, device=device, dtype=dtype)
    else:
        check_images(x_init, "x_init")
        if tuple(x_init.shape) != tuple(shape):
            raise ValueError(f"x_init has shape {tuple(x_init.shape)}, expected {tuple(shape)}")
        if not bool(torch.isfinite(x_init).all()):
            raise ValueError("x_init holds NaN or infinite values")
        dtype = dtype or x_init.dtype
        y = sde.to_basis(x_init.to(dtype))
    _check_model_fits(model, shape, dtype)
    t_end = sde.t_eps if sampler.continuous_time else 0.0
    ts = time_grid(grid, steps, t_start, t_end, sde=sde, device=y.device, dtype=y.dtype)
    counting = CountingModel(model)
    denoiser = Denoiser(counting, sde)
    reporter = Reporter(sde, callback, return_trajectory)
    with torch.no_grad():
        y = sampler(denoiser, y, ts, generator=generator, report=reporter, progress=progress, **options)
        samples = denoiser(y, ts[-1]).image if t_end > 0 else sde.from_basis(y)
    return SampleResult(samples, counting.nfe, reporter.trajectory)
