"""Time grids fitted to one model and one sampler (``sde-edge fit-grid``; the method and why:
docs/samplers.md, "Fitted grids").

The fit minimises the sampler's own global error: the RMSE, over a calibration batch drawn from the
prior with its own named stream, between the K-step solution and the sampler's ``reference_steps``
solution from the same noise. A sampler that draws noise at its steps is driven, on every grid, by
one Brownian path per draw (``sampling/brownian.py``), so the RMSE is its strong error on that path;
for either kind it bounds the Wasserstein-2 distance to the reference sampler's samples. The fit
starts from the best generic grid and moves one interior time at a time to the best of a fine set of
candidates (uniform in t, uniform in the reference log-SNR, the generic grids' points and the
process's jumps, so a step may end exactly at t_phi), sweep after sweep until none improves. The
error is measured through ``sample`` itself, so multistep history, restarts after a jump and the
final denoise count exactly as they will when sampling.
"""
import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from sde_edge.rng import stream_generator
from sde_edge.sampling.brownian import BrownianNoise, snr_clock
from sde_edge.sampling.grids import GRIDS, logsnr_grid, time_grid, uniform_grid
from sde_edge.sampling.memo import MemoModel
from sde_edge.sampling.registry import SAMPLERS, sample, sampler_options


@dataclass(frozen=True)
class FittedGrid:
    """A grid kept by ``fit-grid``: its times (t_start first) and what it was fitted for."""

    times: tuple
    sampler: str
    steps: int
    fitted_for: dict = field(default_factory=dict, compare=False)

    def __str__(self):
        return "fitted"


def process_digest(diffusion_config):
    """A digest of the process's config: a grid fitted for one process is refused for another."""
    text = json.dumps(diffusion_config.to_dict() if hasattr(diffusion_config, "to_dict") else diffusion_config,
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def grid_path(folder, sampler, steps):
    return Path(folder) / "grids" / f"{sampler}_{steps}.json"


def _candidates(t_start, t_end, sde, fine):
    points = uniform_grid(fine, t_start, t_end).tolist()
    try:
        points += logsnr_grid(fine, t_start, t_end, sde).tolist()
    except (AttributeError, NotImplementedError):  # a process without a reference log-SNR
        pass
    points += [jump for jump in sde.discontinuities if t_end < jump < t_start]
    return sorted({round(p, 12) for p in points if t_end < p < t_start}, reverse=True)


def _generic_grids(steps, t_start, t_end, sde):
    grids = {}
    for name in GRIDS:
        try:
            grids[name] = tuple(time_grid(name, steps, t_start, t_end, sde=sde, dtype=torch.float64).tolist())
        except (AttributeError, NotImplementedError):
            continue
    return grids


class _Objective:
    """RMSE of the sampler on a grid against its reference solution, from fixed noise (and, once
    ``couple`` is called, one fixed Brownian path per draw); memoised."""

    def __init__(self, sampler, model, sde, x_init, t_start, options, reference_steps, steps):
        # the memory holds a few solutions' calls (heun takes two a step): the prefix shared by a
        # coordinate's candidates stays, the reference's 1,000 calls pass through
        self.model = MemoModel(model, capacity=8 * (steps + 2))
        self.sampler, self.sde, self.options = sampler, sde, options
        self.x_init, self.t_start, self.cache, self.path = x_init, t_start, {}, None
        self.reference_steps = reference_steps
        self.reference = None  # solved at the first call (on the path, if ``couple`` comes first)

    @property
    def nfe(self):
        """Network evaluations made (calls answered from the memory not counted)."""
        return self.model.evaluations

    @property
    def t_end(self):
        return self.sde.t_eps if SAMPLERS[self.sampler].continuous_time else 0.0

    def solve(self, times, noise_seed=0):
        times = torch.as_tensor(times, dtype=torch.float64)
        x = self.x_init
        noise = self.path if self.coupled else torch.Generator(x.device).manual_seed(noise_seed)
        result = sample(self.sampler, self.model, self.sde, tuple(x.shape), steps=len(times) - 1, x_init=x,
                        t_start=self.t_start, grid=times, generator=noise, **self.options)
        return result.samples

    def solve_reference(self):
        return self.solve(torch.linspace(self.t_start, self.t_end, self.reference_steps + 1, dtype=torch.float64))

    @property
    def coupled(self):
        return self.path is not None

    def couple(self, seed):
        """From now on every grid's noise is one Brownian path per draw, from ``seed`` (the reference
        solved on it now, so that a sampler whose noise the path cannot give is refused at once)."""
        x = self.x_init
        self.path = BrownianNoise(x.shape, seed, clock=snr_clock(self.sde), device=x.device, dtype=x.dtype)
        self.cache = {}
        try:
            self.reference = self.solve_reference()
        except ValueError as error:
            raise ValueError(f"--sampler {self.sampler} with options {self.options or 'as default'} draws fresh "
                             f"noise, and {error}; fit a grid for a deterministic sampler or one whose noise is "
                             "a time step's (ddpm, ddim, dpmpp_2m_sde, euler_maruyama, pc without corrector)") from None

    def __call__(self, times):
        if self.reference is None:
            self.reference = self.solve_reference()
        if times not in self.cache:
            difference = self.solve(times) - self.reference
            self.cache[times] = float(difference.double().pow(2).mean().sqrt())
        return self.cache[times]


def _couple_if_stochastic(objective, times):
    """Couple a sampler that draws noise to one Brownian path per draw: without it, its error
    against one reference sample would be mostly the two noises' difference. Returns the noise."""
    # a tolerance, not equality: a GPU's convolutions need not repeat to the bit; fresh noise moves O(1)
    first, second = objective.solve(times, noise_seed=0), objective.solve(times, noise_seed=1)
    if torch.allclose(first, second, rtol=0, atol=1e-3):
        return "none"
    objective.couple(seed=0)
    return "one Brownian path per draw"


def _descend(times, candidates, objective, sweeps, tries, progress):
    """Coordinate descent over the interior times; each move takes the best candidate between the
    neighbours, searched coarse (``tries`` evenly spaced) then among the best one's fine neighbours."""
    times = list(times)
    best = objective(tuple(times))
    for _ in tqdm(range(sweeps), desc="fitting the grid", disable=not progress, leave=False):
        moved = False
        for k in range(1, len(times) - 1):
            inside = [c for c in candidates if times[k + 1] < c < times[k - 1]]
            if not inside:
                continue
            stride = max(1, math.ceil(len(inside) / tries))
            coarse = list(range(0, len(inside), stride))

            def error_at(index, k=k, inside=inside):
                return objective(tuple(times[:k] + [inside[index]] + times[k + 1:]))

            pick = min(coarse, key=error_at)
            pick = min(range(max(0, pick - stride + 1), min(len(inside), pick + stride)), key=error_at)
            if error_at(pick) < best:
                times[k], best, moved = inside[pick], error_at(pick), True
        if not moved:
            break
    return tuple(times), best


def _held_as(times, dtype):
    """``times`` rounded to ``dtype`` (as Python floats)."""
    return torch.tensor(list(times), dtype=torch.float64).to(dtype).double().tolist()


def fit_grid(model, sde, x_init, *, sampler, steps, held_out=None, t_start=1.0, reference_steps=1000, sweeps=4,
             tries=12, fine=96, progress=False, **options):
    """Fit a ``steps``-step grid for ``sampler`` from the states ``x_init`` at ``t_start`` (pixels;
    at t_start = 1 a prior draw). Returns (times, report): the report holds each generic grid's and
    the fitted grid's error on the calibration batch and, given ``held_out`` states, on those."""
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; choose one of {sorted(SAMPLERS)}")
    if sampler == "ode":
        raise ValueError("--sampler ode chooses its own steps (adaptive RK45): there is no grid to fit")
    started = time.perf_counter()
    objective = _Objective(sampler, model, sde, x_init, t_start, options, reference_steps, steps)
    # every interior time as the states' dtype holds it (the sampler casts the grid to it): two
    # candidates that round to one value would make a step of no length
    generic = {name: (g[0], *_held_as(g[1:-1], x_init.dtype), g[-1])
               for name, g in _generic_grids(steps, t_start, objective.t_end, sde).items()}
    noise = _couple_if_stochastic(objective, generic["uniform"])
    start = min(generic.values(), key=objective)
    candidates = _candidates(t_start, objective.t_end, sde, fine) + [t for g in generic.values() for t in g[1:-1]]
    candidates = sorted(set(_held_as(candidates, x_init.dtype)), reverse=True)
    times, error = _descend(start, candidates, objective, sweeps, tries, progress)
    report = {"calibration": {**{name: objective(g) for name, g in generic.items()}, "fitted": error},
              "started_from": next(name for name, g in generic.items() if g == start), "noise": noise,
              "nfe": objective.nfe, "nfe_remembered": objective.model.hits,
              "seconds": round(time.perf_counter() - started, 2),
              "reference_steps": reference_steps, "t_end": objective.t_end}
    if held_out is not None:
        check = _Objective(sampler, model, sde, held_out, t_start, options, reference_steps, steps)
        if objective.coupled:
            check.couple(seed=1)  # held-out draws on a path of their own
        report["held_out"] = {**{name: check(g) for name, g in generic.items()}, "fitted": check(times)}
    return times, report


def calibration_states(sde, shape, seed, stream, device="cpu"):
    """Prior draws (pixels) from the named stream ``stream`` of ``seed``: never the evaluation noise."""
    generator = stream_generator(seed, stream, device=device)
    return sde.from_basis(sde.prior_sampling(shape, generator=generator, device=device, dtype=torch.float32))


def perturbed_states(sde, images, t0, seed, stream):
    """``images`` (clean, in the model's space) perturbed by the forward process to ``t0`` with noise
    from the named stream ``stream`` of ``seed``: where SDEdit starts (its guides perturbed to t0)."""
    generator = stream_generator(seed, stream, device=images.device)
    noise = torch.randn(images.shape, generator=generator, device=images.device, dtype=images.dtype)
    return sde.perturb(images, t0, noise)


def save_fitted(folder, times, *, sampler, steps, options, fitted_for, report):
    path = grid_path(folder, sampler, steps)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"times": list(times), "sampler": sampler, "steps": steps, "options": options,
              "fitted_for": fitted_for, "report": report}
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(record, indent=1))
    temporary.replace(path)
    return path


def load_fitted(folder, *, sampler, steps, options, fitted_for):
    """The grid kept in ``folder`` for (sampler, steps), checked against what it must have been
    fitted for (model, process, t_start...); any difference is one line naming it."""
    path = grid_path(folder, sampler, steps)
    if not path.is_file():
        raise ValueError(f"--grid fitted: no grid fitted for sampler {sampler!r} at {steps} steps ({path}); "
                         f"run sde-edge fit-grid --workdir {folder} --sampler {sampler} --steps {steps}")
    try:
        record = json.loads(path.read_text())
        kept = {"sampler": record["sampler"], "steps": record["steps"], "options": record["options"],
                **record["fitted_for"]}
        times = tuple(float(t) for t in record["times"])
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"--grid fitted: {path} is not a fitted grid ({error}); run fit-grid again") from None
    wanted = {"sampler": sampler, "steps": steps, "options": options, **fitted_for}
    for key, value in wanted.items():
        if kept.get(key) != value:
            raise ValueError(f"--grid fitted: {path} was fitted for {key} = {kept.get(key)!r}, this run samples "
                             f"with {key} = {value!r}; run fit-grid again")
    return FittedGrid(times, sampler, steps, kept)


def fitted_for(run, t_start=1.0):
    """What a grid fitted on ``run`` (a ``TrainedRun``) is for: its weights, its process, the shape
    of what it generates and the time sampling starts at."""
    return {"model": run.model_digest, "process": process_digest(run.config.diffusion), "t_start": float(t_start)}


def all_options(sampler, given):
    """The sampler's every option, ``given`` over its defaults: what a grid is fitted for."""
    return {**sampler_options(sampler), **given}


def fitted_grid_of(run, sampler, steps, given, t_start=1.0):
    """``--grid fitted``: the grid ``fit-grid`` kept in the run's folder for this sampling (``given``:
    the options set on the command line)."""
    return load_fitted(run.workdir, sampler=sampler, steps=steps, options=all_options(sampler, given),
                       fitted_for=fitted_for(run, t_start))
