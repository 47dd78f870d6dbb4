"""Samplers by name, one entry point (paper_appendix/math.md, sections 5 and 8).

    result = sample("ddpm", model, sde, (64, 1, 16, 16), steps=100, generator=g)
    result.samples, result.nfe, result.trajectory

Every sampler is a plain function ``sampler(denoiser, y, ts, *, generator, report, progress,
**options) -> y`` registered with ``@register_sampler(name)``: it walks the decreasing time
grid ``ts`` (from ``grids.py``) on the process's coordinates, reports each grid time before its
step, and returns the state at the last grid time; ``sample`` does the final denoise.
"""
from sde_edge.sampling import continuous, discrete, multistep, ode  # noqa: F401  (they register the samplers)
from sde_edge.sampling.registry import SAMPLERS, SampleResult, register_sampler, sample, sampler_options

__all__ = ["SAMPLERS", "SampleResult", "register_sampler", "sample", "sampler_options"]
