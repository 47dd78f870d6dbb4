"""Evaluations of experiment runs, each computed once and cached as JSON (so every study resumes).

An evaluation samples a checkpoint's EMA model with one protocol (sampler, steps, number of
samples, seed; for SDEdit also the hijack time) and measures the samples with
``sde_edge.metrics`` against the test split of the run's own data (the blurred split for a
blurred run), in the dataset classifier's feature space (no Inception offline).
"""
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from sde_edge.config import image_shape
from sde_edge.data.datasets import load_dataset
from sde_edge.devices import describe_device, resolve_device
from sde_edge.experiments.kept import keep_evaluation, keep_result, kept_evaluation, kept_file, kept_result
from sde_edge.experiments.runs import workdir_of
from sde_edge.figures import save_grid
from sde_edge.metrics.classifier import classifier_path
from sde_edge.metrics.features import ClassifierFeatures
from sde_edge.metrics.report import sample_quality
from sde_edge.processes.registry import build_sde
from sde_edge.restore import load_run
from sde_edge.sampling.batched import sample_in_batches
from sde_edge.sdedit import default_strokes, sdedit, stroke_paintings
from sde_edge.storage.checkpoint import checkpoint_path, checkpoint_paths

SDEDIT_STEPS = 50


class Pending(Exception):
    """What a study needs (an evaluation or a training) is not on disk and computing is off."""


_COMPUTE = {"enabled": True, "runs": None}


def set_compute(enabled, runs=None):
    """``False``: studies report only from trainings and evaluations already on disk (a study that
    misses one raises ``Pending``); for writing the report while long runs go on elsewhere.
    ``runs``: the run keys this process may train and evaluate (one worker's share; ``None``: all);
    what another worker computes is ``Pending`` here."""
    _COMPUTE.update(enabled=bool(enabled), runs=None if runs is None else frozenset(runs))


def require_compute(what, run_key):
    """Raise ``Pending`` unless this process may compute ``what`` (the work of run ``run_key``)."""
    if not _COMPUTE["enabled"]:
        raise Pending(what)
    if _COMPUTE["runs"] is not None and run_key not in _COMPUTE["runs"]:
        raise Pending(f"{what} (another worker's)")


@dataclass(frozen=True)
class Protocol:
    """How a checkpoint is evaluated. ``split`` is the reference ('val' for tuning), ``ema`` False reads
    the raw weights, and ``diffusion`` replaces fields of the run's process for sampling only
    (((field, value), ...): a model trained with one transition function sampled with another)."""

    sampler: str
    steps: int
    n: int
    seed: int = 0
    t0: float = None  # SDEdit's hijack time (None: unconditional sampling)
    split: str = "test"
    ema: bool = True
    diffusion: tuple = ()

    @property
    def slug(self):
        text = f"{self.sampler}{self.steps}_n{self.n}_seed{self.seed}"
        text += f"_sdedit{self.t0:g}" if self.t0 is not None else ""
        text += "".join(f"_{key}-{value}" for key, value in self.diffusion)
        return text + ("" if self.split == "test" else f"_{self.split}") + ("" if self.ema else "_raw")


def _checkpoint(spec, root, step):
    """The checkpoint of ``step``; by default the newest one on disk."""
    folder = workdir_of(spec, root) / "checkpoints"
    if step is None:
        paths = checkpoint_paths(folder)
        if not paths:
            raise FileNotFoundError(f"run {spec.key} has no checkpoint in {folder}: train it first")
        return paths[-1]
    return checkpoint_path(folder, step)


_FEATURES = {}


def features_for(config):
    key = (config.data.dataset, config.data.image_size, config.data.num_channels)
    if key not in _FEATURES:
        with kept_file(classifier_path(*key), "classifiers"):
            _FEATURES[key] = ClassifierFeatures(*key, progress=False)
    return _FEATURES[key]


def derived_result(name, made_for, root, compute):
    """A result a study derives from several runs or from a first stage (a reconstruction floor, a
    diagnostic over the arms): kept in the checkout (``kept_result``), else cached in
    ROOT/evals/<name>.json, else ``compute()`` (which may raise ``Pending``); cached and kept once
    known, each with ``made_for``, so that a result made for other inputs is made again."""
    value = kept_result(name, made_for)
    if value is not None:
        return value
    cache = Path(root) / "evals" / f"{name}.json"
    cached = json.loads(cache.read_text()) if cache.exists() else {}
    if cached.get("made_for") == json.loads(json.dumps(made_for)):
        value = cached["value"]
    else:
        value = compute()
        cache.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomically({"made_for": made_for, "value": value}, cache)
    keep_result(name, made_for, value)
    return value


def _low_resolution_l2(a, b, factor=4):
    """Per-image L2 distance between 1/factor-resolution versions (average pooling): how far a result
    strays from its source's layout, ignoring detail."""
    pool = torch.nn.functional.avg_pool2d
    return (pool(a, factor) - pool(b, factor)).flatten(1).norm(dim=1)


def write_json_atomically(value, path):
    """A killed process leaves the old file or none, never half of one (the caches are read back)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(value, indent=1))
    tmp.replace(path)


def cache_path(spec, root, protocol, step=None):
    """Where ``evaluate`` keeps its metrics (``.json``) and its sample grid (``.png``)."""
    return Path(root) / "evals" / spec.key / _checkpoint(spec, root, step).stem / f"{protocol.slug}.json"


def evaluate(spec, root, protocol, *, step=None, quick=False, progress=False):
    """The metrics of one checkpoint (default: the last) under ``protocol``; cached on disk and kept
    (``kept``: a kept evaluation needs neither the checkpoint nor the cache)."""
    kept = kept_evaluation(spec, protocol.slug, step, quick)
    if kept is not None:
        return kept
    checkpoint = _checkpoint(spec, root, step)
    cache = cache_path(spec, root, protocol, step)
    if cache.exists():
        metrics = json.loads(cache.read_text())
        keep_evaluation(spec, protocol.slug, metrics, quick)  # a cache from before keeping began
        return metrics
    require_compute(f"{spec.key} {checkpoint.stem} {protocol.slug}", spec.key)
    started = time.perf_counter()
    # on the machine's device (a GPU where there is one): channels-last on a CPU, compiled on a GPU, each
    # where it paid for these networks (docs/benchmarks.md)
    device = resolve_device("auto")
    on_cpu = device.type == "cpu"
    run = load_run(checkpoint, device=device, use_ema=protocol.ema, channels_last=on_cpu,
                   compile_backend=None if on_cpu else "inductor")
    if protocol.diffusion:
        with run.config.diffusion.unlocked():
            run.config.diffusion.update(dict(protocol.diffusion))
        run.sde = build_sde(run.config.diffusion)
    test = load_dataset(run.config.data, protocol.split)
    features = features_for(run.config)
    # the finished batches of a killed evaluation (an hour or more at 32 px on a CPU) resume from here
    resume = {"partial": cache.with_name(f".{cache.stem}.partial"), "source": f"{spec.key}/{checkpoint.stem}"}
    if protocol.t0 is None:
        reference = test.first(len(test))
        result = sample_in_batches(protocol.sampler, run.model, run.sde, image_shape(run.config, protocol.n),
                                   steps=protocol.steps, seed=protocol.seed, batch_size=250, device=device,
                                   progress=progress, decode=run.decode, **resume)
        extra = {}
    else:
        sources = test.first(protocol.n)
        reference = test.first(len(test))
        guides = stroke_paintings(sources, default_strokes(run.config.data.num_channels), seed=protocol.seed)
        result = sdedit(run.model, run.sde, guides, t0=protocol.t0, sampler=protocol.sampler, steps=protocol.steps,
                        seed=protocol.seed, batch_size=250, device=device, progress=progress, **resume,
                        **({"encode": run.encode, "decode": run.decode} if run.first_stage is not None else {}))
        labels = features.probabilities(result.samples).argmax(1)
        extra = {"class_preserved": float((labels == test.labels[:len(sources)]).float().mean()),
                 "low_res_l2": float(_low_resolution_l2(result.samples, sources).mean())}
        save_grid(torch.cat([sources[:8], guides[:8], result.samples[:8]]), cache.with_suffix(".png"), nrow=8)
    metrics = sample_quality(result.samples, reference, features, seed=protocol.seed, progress=False)
    metrics.update(extra, run=spec.key, step=int(run.step), nfe=result.nfe, **asdict(protocol),
                   device=describe_device(device),
                   wall_seconds=round(time.perf_counter() - started + result.resumed_seconds, 1))
    cache.parent.mkdir(parents=True, exist_ok=True)
    if protocol.t0 is None:
        save_grid(result.samples[:64], cache.with_suffix(".png"))
    write_json_atomically(metrics, cache)
    keep_evaluation(spec, protocol.slug, metrics, quick)
    return metrics


def mean_and_stderr(values):
    values = np.asarray([v for v in values if v is not None], dtype=np.float64)
    if len(values) == 0:
        return float("nan"), float("nan")
    stderr = values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else float("nan")
    return float(values.mean()), float(stderr)
