"""Samplers by name, one entry point (SPEC sections 5 and 8).

    result = sample("ddpm", model, sde, (64, 1, 16, 16), steps=100, generator=g)
    result.samples, result.nfe, result.trajectory

Every sampler is a plain function ``sampler(model, sde, x, ts, *, generator, callback,
progress, **options) -> x0_hat`` registered with ``@register_sampler(name)``; it walks
the decreasing time grid ``ts`` (from ``grids.py``) and ends with the denoised x0_hat.
"""
from sde_edge.sampling.registry import SAMPLERS, SampleResult, register_sampler, sample
from sde_edge.sampling import continuous, discrete, ode  # noqa: F401  (they register the samplers)

__all__ = ["SAMPLERS", "SampleResult", "register_sampler", "sample"]
