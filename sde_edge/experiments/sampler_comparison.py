"""Sampler comparison: samplers x time grids x step counts -> NFE, wall time and quality, as CSV,
a markdown table, a plot of quality against NFE and sample grids (``tools/compare_samplers.py``).

Quality is measured by a judge: with the mixture oracle, the share of samples within RMSE 0.05
of a mode and the chi-square test of the mode frequencies (``OracleJudge``, which the sampler
tests use too); with a trained model, the sample-quality metrics of ``sde_edge.metrics``
against a data split (``MetricsJudge``: FD, KID, precision/recall, SWD), one chosen as primary.
A sampler that cannot run on the process (a continuous-time sampler where sigma jumps, a
fixed-step solver on a non-uniform grid) is skipped with its reason in full. The figure is drawn by
``sde_edge.experiments.nfe_plot``.

With a ``SettingCache`` every finished setting is kept (its row, its features, a few samples), so an
interrupted comparison resumes at the first setting it had not finished.
"""
import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from scipy.stats import chisquare
from tqdm.auto import tqdm

from sde_edge.figures import save_grid
from sde_edge.metrics.distances import FixedReferenceFD
from sde_edge.metrics.report import sample_quality
from sde_edge.sampling import SAMPLERS, sample
from sde_edge.sampling.brownian import NotAStepNoise
from sde_edge.storage.checkpoint import atomic_save


@dataclass(frozen=True)
class SamplerSpec:
    """A sampler and its options, written ``name``, ``name:method`` (``torchsde:srk``) or with
    keyword options ``name:key=value[:key=value...]`` (``edm:s_churn=10:s_noise=1.003``)."""

    name: str
    options: dict = field(default_factory=dict, hash=False)

    @classmethod
    def parse(cls, text):
        name, *parts = text.split(":")
        options = {}
        for part in parts:
            key, equals, value = part.partition("=")
            if not equals:
                key, value = "method", part
            if not key or not value:
                raise ValueError(f"sampler {text!r}: expected name, name:method or name:key=value[:key=value], "
                                 f"got the option {part!r}")
            options[key] = _number_or_text(value)
        return cls(name, options)

    @property
    def label(self):
        return ":".join([self.name, *(str(v) if k == "method" else f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                                      for k, v in self.options.items())])


def _number_or_text(value):
    try:
        return float(value)
    except ValueError:
        return value


def mode_statistics(samples, images, weights, radius=0.05):
    """(share of samples within RMSE ``radius`` of a mode, chi-square statistic and p-value of
    the nearest-mode counts against ``weights``)."""
    rmse = (samples[:, None].cpu().double() - images[None].cpu().double()).square().flatten(2).mean(-1).sqrt()
    nearest_rmse, nearest = rmse.min(1)
    near = nearest_rmse < radius
    counts = torch.bincount(nearest[near], minlength=len(images)).double().numpy()
    weights = np.asarray(weights, dtype=np.float64)
    if counts.sum() == 0:
        return near.double().mean().item(), float("inf"), 0.0
    test = chisquare(counts, counts.sum() * weights / weights.sum())
    return near.double().mean().item(), float(test.statistic), float(test.pvalue)


class OracleJudge:
    """Mode coverage against the mixture oracle's images and weights."""

    primary = "chi2"

    def __init__(self, images, weights, radius=0.05):
        self.images, self.weights, self.radius = images, weights, radius

    def __call__(self, samples):
        near, statistic, p_value = mode_statistics(samples, self.images, self.weights, self.radius)
        return {"near_mode": near, "chi2": statistic, "chi2_p": p_value}


class MetricsJudge:
    """``sde_edge.metrics`` against a reference image set; ``primary`` names the headline metric.
    ``last_features`` holds the features of the samples judged last (for paired differences)."""

    def __init__(self, features, reference, primary="fd"):
        self.features, self.reference, self.primary = features, reference, primary
        self.last_features = None
        self._reference_fd = None

    def __call__(self, samples):
        samples = samples.clamp(-1, 1)  # as images
        report = sample_quality(samples, self.reference, self.features, progress=False)
        self.last_features = self.features(samples, progress=False)
        keep = ("fd", "fd_stderr", "kid", "precision", "recall", "swd_mean", "confident")
        return {key: report[key] for key in keep if key in report}

    def paired_fd_difference(self, features, reference_features, resamples=200, seed=0):
        """(FD(setting) - FD(reference), its bootstrap standard error). Sample i of both sets started
        from the same initial noise (the same seed), so the pairs are resampled together: the
        noise shared by both sets cancels, and differences below one unpaired s.e. can be called."""
        if self._reference_fd is None:
            self._reference_fd = FixedReferenceFD(self.features(self.reference, progress=False))
        fd = self._reference_fd
        n = min(len(features), len(reference_features))
        rng = np.random.default_rng(seed)
        draws = [rng.integers(0, n, n) for _ in range(resamples)]
        differences = [fd(features[i]) - fd(reference_features[i]) for i in draws]
        return float(fd(features[:n]) - fd(reference_features[:n])), float(np.std(differences, ddof=1))


def refusal(name, sde, grid):
    """Why ``name`` cannot run on ``sde`` with ``grid`` (None if it can)."""
    if name not in SAMPLERS:
        return f"unknown sampler {name!r}; choose one of {sorted(SAMPLERS)}"
    if SAMPLERS[name].continuous_time and not sde.is_continuous:
        return f"a continuous-time sampler, but sigma jumps at t = {sde.discontinuities} (use tau='linear_ramp')"
    if name == "torchsde" and grid != "uniform":
        return "torchsde steps with a fixed dt: uniform grid only"
    return None


class SettingCache:
    """Finished settings in ``folder``, one file each, keyed by the setting and by ``identity`` (what
    else decides the result: the checkpoint, the judge, the number of samples), so a file is only
    reused for the same question. Files are written atomically; a killed run loses one setting."""

    def __init__(self, folder, identity):
        self.folder, self.identity = Path(folder), identity

    def _path(self, setting):
        text = json.dumps([self.identity, setting], sort_keys=True, default=str)
        return self.folder / f"{hashlib.sha256(text.encode()).hexdigest()[:20]}.pt"

    def get(self, setting):
        path = self._path(setting)
        return torch.load(path, map_location="cpu", weights_only=True) if path.is_file() else None

    def put(self, setting, entry):
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_save(entry, self._path(setting))


def _run_setting(spec, grid, steps, extra, model, sde, shape, judge, seed, x_init, coupling):
    """(row fields, features or None, samples) of one setting (``coupling``: a ``SharedPath``)."""
    x_init, generator = coupling.start() if coupling is not None else (x_init, torch.Generator().manual_seed(seed))
    start = time.perf_counter()
    result = sample(spec.name, model, sde, shape, steps=steps, generator=generator, x_init=x_init, grid=grid,
                    **spec.options, **extra)
    fields = {"nfe": result.nfe, "seconds": time.perf_counter() - start, **judge(result.samples)}
    fields = {k: v.item() if hasattr(v, "item") else v for k, v in fields.items()}  # plain numbers keep
    features = getattr(judge, "last_features", None)
    return fields, None if features is None else torch.as_tensor(np.asarray(features)), result.samples


def run_comparison(model, sde, shape, specs, step_counts, judge, *, grids=("uniform",), seed=0,
                   ode_tolerances=(1e-2, 1e-3, 1e-4), x_init=None, out_dir=None, progress=True, cache=None,
                   fitted=None, coupling=None):
    """Every spec on every grid at every step count (``ode``: every tolerance); a list of rows.
    ``cache`` (a ``SettingCache``) keeps each finished setting and reuses it. The grid ``fitted`` is
    ``fitted(spec, steps)`` (a ``FittedGrid``; a ValueError skips it). ``coupling``: a ``SharedPath``."""
    settings = [(spec, grid, steps, extra) for spec in specs for grid in grids
                for steps, extra in ([(2, {"rtol": tol, "atol": tol}) for tol in ode_tolerances] if spec.name == "ode"
                                     else [(k, {}) for k in step_counts])
                if not (spec.name == "ode" and grid != grids[0])]
    rows, last_samples = [], {}
    features = {}  # row index -> the judge's features of its samples (paired differences)
    for spec, grid, steps, extra in tqdm(settings, desc="samplers x grids x steps", disable=not progress):
        row = {"sampler": spec.label, "grid": grid if spec.name != "ode" else "adaptive",
               "steps": steps if spec.name != "ode" else "", "tolerance": extra.get("rtol", "")}
        reason = refusal(spec.name, sde, grid)
        times = grid
        if not reason and grid == "fitted":
            try:
                times = fitted(spec, steps) if fitted is not None else None
            except ValueError as error:
                reason = str(error)
            if times is None and not reason:
                reason = "no fitted grids here (they are kept in a run's folder: use --workdir)"
        if reason:
            rows.append({**row, "skipped": reason})
            continue
        key = {**row, "options": spec.options, "extra": extra, "seed": seed, "shape": list(shape),
               **({"times": list(times.times)} if grid == "fitted" else {}),
               **({"coupling": coupling.key} if coupling is not None else {})}
        entry = cache.get(key) if cache is not None else None
        if entry is None:
            try:
                fields, setting_features, samples = _run_setting(spec, times, steps, extra, model, sde, shape,
                                                                 judge, seed, x_init, coupling)
            except NotAStepNoise as error:  # a coupled setting whose noise the path cannot give
                rows.append({**row, "skipped": f"not coupled: {error}"})
                continue
            entry = {"fields": fields, "features": setting_features, "samples": samples[:64].clone()}
            if cache is not None:
                cache.put(key, entry)
        rows.append({**row, **entry["fields"]})
        if entry["features"] is not None:
            features[len(rows) - 1] = entry["features"].numpy()
        last_samples[(spec.label, grid)] = entry["samples"]
    if out_dir is not None:
        for (label, grid), samples in last_samples.items():
            save_grid(samples[:64], Path(out_dir) / f"samples_{label.replace(':', '_')}_{grid}.png")
    for index, row in enumerate(rows):
        if index in features:
            row["_features"] = features[index]  # not written to the CSV; see add_paired_differences
    return rows


def add_paired_differences(rows, judge, reference_label, reference_steps, baseline_grid="uniform"):
    """``fd_diff`` and ``fd_diff_se`` (paired bootstrap, ``MetricsJudge.paired_fd_difference``) of every
    row against the reference row, and ``fd_vs_<baseline_grid>`` (``_se``) of every row on another grid
    against the same sampler and steps on that grid; drops the rows' features afterwards."""
    reference = next((r for r in rows if r["sampler"] == reference_label and r.get("steps") == reference_steps
                      and "_features" in r), None)
    baseline = {(r["sampler"], r["steps"]): r for r in rows if r["grid"] == baseline_grid and "_features" in r}
    column = f"fd_vs_{baseline_grid}"
    for row in rows:
        if reference is not None and "_features" in row:
            row["fd_diff"], row["fd_diff_se"] = judge.paired_fd_difference(row["_features"], reference["_features"])
        same = baseline.get((row["sampler"], row["steps"]))
        if same is not None and same is not row and "_features" in row:  # the grid's own effect, paired
            row[column], row[f"{column}_se"] = judge.paired_fd_difference(row["_features"], same["_features"])
    for row in rows:
        row.pop("_features", None)
    return rows


def parse_reference(text):
    """("ddpm", 500) from "ddpm@500"; a ValueError naming the expected form otherwise."""
    label, at, steps = text.partition("@")
    if not (label and at and steps.isdigit()):
        raise ValueError(f"a reference reads SAMPLER@STEPS, e.g. ddpm@500; got {text!r}")
    return label, int(steps)


def is_reference_row(row, reference_label, reference_steps):
    """Whether ``row`` is the reference sampler's at ``reference_steps`` (a CSV's cells are text: steps too)."""
    return row["sampler"] == reference_label and str(row.get("steps")) == str(reference_steps)


def reference_value(rows, reference_label, reference_steps, metric):
    """``metric`` of the reference sampler at ``reference_steps`` among ``rows`` (None if absent)."""
    reference = [r for r in rows if is_reference_row(r, reference_label, reference_steps) and metric in r]
    return reference[0][metric] if reference else None


def smallest_nfe(rows, accept):
    """For each sampler and grid, the smallest NFE of a row that ``accept`` takes, or None."""
    matches = {}
    for label in dict.fromkeys((row["sampler"], row["grid"]) for row in rows):
        candidates = [r["nfe"] for r in rows if (r["sampler"], r["grid"]) == label and accept(r)]
        matches[f"{label[0]} ({label[1]})"] = min(candidates) if candidates else None
    return matches


def nfe_to_match(rows, reference_label, reference_steps, metric, tolerance=0.10):
    """For each sampler and grid, the smallest NFE whose ``metric`` is within ``tolerance``
    (relative) of the reference sampler at ``reference_steps``, or None."""
    target = reference_value(rows, reference_label, reference_steps, metric)
    if target is None:
        return {}
    return smallest_nfe(rows, lambda r: metric in r and r[metric] <= target * (1 + tolerance))


def nfe_to_match_paired(rows, reference_label, reference_steps, tolerance=0.10, z=2.0):
    """The same question answered with the paired errors: the smallest NFE whose paired difference to
    the reference (``fd_diff``) is below ``tolerance`` x the reference's FD by ``z`` standard errors
    (``fd_diff_se``): within 10% *and resolved*. None where no setting is; ``{}`` without pairs."""
    target = reference_value(rows, reference_label, reference_steps, "fd")  # the pairs are FD differences
    if target is None or not any("fd_diff" in r for r in rows):
        return {}
    return smallest_nfe(rows, lambda r: "fd_diff" in r and r["fd_diff"] + z * r["fd_diff_se"] <= tolerance * target)


def read_nfe_to_match(folder):
    """What ``tools/compare_samplers.py`` wrote in ``folder`` about the NFE to match: (point, paired,
    bridged), each {series: NFE or None}; paired is {} and bridged None where that file is absent, and
    the whole answer None without the point file."""
    folder = Path(folder)
    if not (folder / "nfe_to_match_ddpm.json").is_file():
        return None
    point, paired, bridged = (folder / f"nfe_to_match_{kind}.json" for kind in ("ddpm", "paired", "bridged"))
    return (json.loads(point.read_text()), json.loads(paired.read_text()) if paired.is_file() else {},
            json.loads(bridged.read_text()) if bridged.is_file() else None)
