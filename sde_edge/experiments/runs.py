"""Training runs of the experiments: one config file, one seed, a few overrides each.

Every run uses the existing trainer and configs, with checkpoints kept every 500 steps (the
convergence and frequency studies read them) and the held-out loss logged. A run is resumable
and a finished one is reused: ``ensure_trained`` only trains what is missing.
"""
import csv
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from sde_edge.config import load_config
from sde_edge.experiments.kept import final_step, keep_divergence, keep_training, kept_divergence, kept_training
from sde_edge.storage.checkpoint import checkpoint_paths, checkpoint_step
from sde_edge.storage.workdir import cache_root
from sde_edge.training.metrics_log import session_devices
from sde_edge.training.trainer import DivergenceError, train

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
MILESTONE = 500
EXPERIMENT_OVERRIDES = {"training.keep_every": MILESTONE, "training.checkpoint_freq": MILESTONE,
                        "training.snapshot_freq": 3000, "training.eval_freq": 250}
# --quick: the same studies on 8x8 images, a tiny UNet and 20 steps (the tests run these).
QUICK_OVERRIDES = {"data.image_size": 8, "model.nf": 8, "model.ch_mult": (1, 2), "model.attn_resolutions": (),
                   "model.num_groups": 4, "training.batch_size": 16, "training.n_iters": 20, "training.keep_every": 10,
                   "training.checkpoint_freq": 10, "training.snapshot_samples": 0, "training.eval_freq": 10,
                   "training.log_freq": 10, "sampling.steps": 5, "device": "cpu"}
QUICK_MILESTONE = 10


FIRST_STAGE_FIELD = "data.latent.autoencoder"
# first stages the studies train on demand ("first_stage:NAME" in a run's overrides), into the cache
# (the study's own first stages are kept in the checkout; --quick trains its tiny one)
FIRST_STAGE_CONFIGS = {"quick": ("latent/shapes64_autoencoder.py", {
    "data.dataset": "digits", "data.image_size": 8, "autoencoder.block_out_channels": (8, 8),
    "autoencoder.num_groups": 4, "training.n_iters": 10, "training.batch_size": 16, "training.eval_freq": 0,
    "training.checkpoint_freq": 10, "eval.batch_size": 64, "eval.scale_images": 256, "eval.psnr_images": 64,
    "device": "cpu"})}


def first_stage_path(value):
    """Where a run's first stage is: ``first_stage:NAME`` (trained on demand into the cache: see
    ``ensure_first_stage``), or a path, relative ones from the checkout (kept first stages live there),
    so that a run's overrides, and with them its kept record, read the same on every machine."""
    if value.startswith("first_stage:"):
        return cache_root() / "first_stages" / value.split(":", 1)[1]
    return Path(value) if Path(value).is_absolute() else CONFIGS.parent / value


def ensure_first_stage(spec, progress=True):
    """Train the first stage a run names as ``first_stage:NAME`` unless it is there (resumable)."""
    value = spec.overrides.get(FIRST_STAGE_FIELD, "")
    if not value.startswith("first_stage:") or (first_stage_path(value) / "first_stage").is_dir():
        return
    from sde_edge.latent.autoencoder_config import validate_autoencoder_config
    from sde_edge.latent.autoencoder_training import train_autoencoder

    name, overrides = FIRST_STAGE_CONFIGS[value.split(":", 1)[1]]
    config = load_config(CONFIGS / name)
    for field_name, field_value in overrides.items():
        section, _, leaf = field_name.rpartition(".")
        (config[section] if section else config)[leaf] = field_value
    print(f"training the first stage {value} in {first_stage_path(value)}", flush=True)
    train_autoencoder(validate_autoencoder_config(config), first_stage_path(value), progress=progress)


@dataclass(frozen=True)
class RunSpec:
    """A training run: ``configs/<config>`` with ``seed`` and ``overrides`` (dotted field -> value)."""

    key: str
    config: str
    seed: int
    overrides: dict = field(default_factory=dict, hash=False, compare=False)

    def build_config(self, quick=False):
        config = load_config(CONFIGS / self.config)
        config.seed = self.seed
        for name, value in {**EXPERIMENT_OVERRIDES, **self.overrides, **(QUICK_OVERRIDES if quick else {})}.items():
            if name == FIRST_STAGE_FIELD:
                value = str(first_stage_path(value))
            section, _, leaf = name.rpartition(".")
            target = config
            for part in filter(None, section.split(".")):
                target = target[part]
            target[leaf] = value
        return config


def workdir_of(spec, root):
    return Path(root) / "trainings" / spec.key


def milestone_steps(spec, root, quick=False):
    """The milestone steps (multiples of the milestone) of a run's kept checkpoints, in order."""
    every = milestone(quick)
    return [step for step in (checkpoint_step(p) for p in checkpoint_paths(workdir_of(spec, root) / "checkpoints"))
            if step % every == 0]


def is_trained(spec, root, quick=False):
    steps = milestone_steps(spec, root, quick)
    return bool(steps) and steps[-1] >= spec.build_config(quick).training.n_iters


DIVERGED = "diverged.txt"  # a run's marker: its training diverged (the reason inside); delete it and the
# run's kept record (kept.py) to try again


def raise_if_diverged(spec, root, quick=False):
    """``DivergenceError`` with the reason if the run's training diverged before (its marker, or the
    kept record where the trainings root is gone)."""
    marker = workdir_of(spec, root) / DIVERGED
    if marker.exists():
        keep_divergence(spec, marker.read_text(), quick)
        raise DivergenceError(marker.read_text())
    if kept_divergence(spec, quick) is not None:
        raise DivergenceError(kept_divergence(spec, quick))


def ensure_trained(spec, root, quick=False, progress=True):
    """Train (or finish) a run unless it is done; returns its workdir. A run that diverges is a result,
    not a failure of the study: its reason is kept in the workdir and ``DivergenceError`` raised, now
    and on every later call (a sweep's cell without clipping may do this)."""
    workdir = workdir_of(spec, root)
    raise_if_diverged(spec, root, quick)
    if not is_trained(spec, root, quick):
        ensure_first_stage(spec, progress=progress)
        print(f"training {spec.key} in {workdir}", flush=True)
        try:
            train(spec.build_config(quick), workdir, progress=progress)
        except DivergenceError as error:
            (workdir / DIVERGED).write_text(str(error))
            keep_divergence(spec, str(error), quick)
            raise
    return workdir


def training_minutes(spec, root):
    """Wall minutes a run has trained so far, from its metrics.csv (each logged interval's steps over
    its steps_per_sec); 0 for a run not started."""
    path = workdir_of(spec, root) / "metrics.csv"
    if not path.exists():
        return 0.0
    seconds, previous = 0.0, 0
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            if row.get("steps_per_sec") and float(row["steps_per_sec"]) > 0:
                seconds += (int(row["step"]) - previous) / float(row["steps_per_sec"])
                previous = int(row["step"])
    return seconds / 60


def gradient_statistics(spec, root):
    """(median gradient norm, share of logged steps whose norm exceeded the clip) from metrics.csv
    (the norm before clipping, sampled every ``training.log_freq`` steps); NaNs for a run not started."""
    path = workdir_of(spec, root) / "metrics.csv"
    if not path.exists():
        return float("nan"), float("nan")
    with open(path, newline="") as handle:
        norms = [float(r["grad_norm"]) for r in csv.DictReader(handle) if r.get("grad_norm")]
    clip = float(spec.overrides.get("optim.grad_clip", spec.build_config().optim.grad_clip))
    if not norms:
        return float("nan"), float("nan")
    share = sum(n > clip for n in norms) / len(norms) if clip > 0 else 0.0
    return statistics.median(norms), share


def training_facts(spec, root, quick=False):
    """{train_minutes, grad_norm_median, clipped_share, steps, trained_on} of a trained run, read from its
    metrics.csv and sessions.csv and kept; where the run is not on disk, what was kept of it ({} if nothing)."""
    if not is_trained(spec, root, quick):
        return kept_training(spec, quick)
    median, clipped = gradient_statistics(spec, root)
    facts = {"train_minutes": training_minutes(spec, root), "grad_norm_median": median, "clipped_share": clipped,
             "steps": final_step(spec, quick)}
    # where it ran: sessions.csv, else what was kept (else, for runs from before sessions.csv, unknown)
    trained_on = " + ".join(session_devices(workdir_of(spec, root))) or kept_training(spec, quick).get("trained_on")
    if trained_on:
        facts["trained_on"] = trained_on
    keep_training(spec, facts, quick)
    return facts


def trained_or_kept(spec, root, quick=False):
    """Whether the run is trained here or its training is kept (kept.py) from where it ran."""
    return is_trained(spec, root, quick) or bool(kept_training(spec, quick))


def milestone(quick):
    return QUICK_MILESTONE if quick else MILESTONE


# --- the runs of every study ------------------------------------------------------------------
SEEDS = (0, 1, 2)
BLUR_SIGMAS = (0.5, 1.0, 2.0)  # pixels; the unblurred band reuses the unconditional runs
T_PHIS = (0.25, 0.75)  # 0.5 is the unconditional edge run
CONSTANT_KAPPAS = (1e-3, 1e-1)


def unconditional_run(dataset, model, seed):
    return RunSpec(f"{dataset}-{model}-s{seed}", f"{dataset}_{model}.py", seed)


def unconditional_runs(datasets=("digits", "shapes"), models=("edge", "ddpm"), seeds=SEEDS):
    return [unconditional_run(d, m, s) for d in datasets for m in models for s in seeds]
