"""The training loop behind ``sde-edge train`` (score_sde's names, crash-safe, DDP-ready).

Reproducibility by construction: the batch of step s is a slice of an epoch permutation
drawn from the run's ``data_order`` stream, and its t and eps come from the ``step_noise``
stream at index s, drawn for the *global* batch and sliced per rank (``sde_edge.rng``). A
resumed run therefore sees exactly the batches and noise it would have seen, and a torchrun
run with K ranks matches a single process with the same global batch.

A run never loses its work: checkpoints are verified and written atomically on their own
cadence (steps or minutes); SIGINT / SIGTERM finish the step, checkpoint and exit; one process
owns the workdir (a kernel lock); a non-finite gradient skips its update, and a run whose
updates keep failing or whose loss explodes stops without saving the damage.
"""
import csv
import json
import logging
import math
import signal
import statistics
import threading
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from sde_edge import distributed
from sde_edge.checkpoint import (load_latest, quarantine_all, remove_stale_temp_files, rng_state, save_checkpoint,
                                 set_rng_state)
from sde_edge.config import image_shape, upgrade_config, validate_config
from sde_edge.data import load_dataset
from sde_edge.losses import ScoreMatchingLoss
from sde_edge.models import EMA, build_model
from sde_edge.processes import build_sde
from sde_edge.rng import stream_generator, stream_seed
from sde_edge.workdir import WorkdirLock, ensure_writable

log = logging.getLogger(__name__)

# Fields that may change between a run and its resumption: they do not change what is learned.
RESUMABLE_CHANGES = ("device", "training.n_iters", "training.log_freq", "training.eval_freq", "training.snapshot_",
                     "training.checkpoint_", "training.keep_", "training.max_skipped_steps",
                     "training.divergence_factor", "sampling.", "eval.")
METRICS = ("step", "loss", "eval_loss", "lr", "grad_norm", "skipped_steps", "steps_per_sec")


class TrainingError(RuntimeError):
    """Training stopped; the message says why and what to do."""


class DivergenceError(TrainingError):
    pass


class TrainingInterrupted(TrainingError):
    """SIGINT or SIGTERM: the step finished and a checkpoint was written."""

    def __init__(self, signum, message):
        super().__init__(message)
        self.signum = signum


class ConfigMismatchError(ValueError):
    pass


@dataclass
class TrainResult:
    step: int
    checkpoint: Path
    workdir: Path


def flatten_config(config):
    """{'training.batch_size': 64, ...} from a ConfigDict or its JSON."""
    tree = json.loads(config) if isinstance(config, str) else json.loads(config.to_json())
    flat = {}

    def walk(node, prefix):
        for key, value in node.items():
            if isinstance(value, dict):
                walk(value, f"{prefix}{key}.")
            else:
                flat[prefix + key] = value

    walk(tree, "")
    return flat


def config_differences(saved_json, config):
    """The fields that differ between a checkpoint's config and ``config`` and change what is learned."""
    import ml_collections

    saved = flatten_config(upgrade_config(ml_collections.ConfigDict(json.loads(saved_json))))
    current = flatten_config(config)
    return [
        f"{key}: {saved.get(key, '<absent>')!r} in the checkpoint, {current.get(key, '<absent>')!r} now"
        for key in sorted(set(saved) | set(current))
        if saved.get(key) != current.get(key) and not key.startswith(RESUMABLE_CHANGES)
    ]


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


def _rank_slice(ctx, batch_size):
    if batch_size % ctx.world_size:
        raise ValueError(f"training.batch_size={batch_size} must be divisible by the {ctx.world_size} torchrun processes")
    local = batch_size // ctx.world_size
    return slice(ctx.rank * local, (ctx.rank + 1) * local)


def draw_noise(loss, seed, stream, index, shape, device):
    """t, importance weights and eps for a batch of ``shape``, from stream (seed, stream, index)."""
    generator = stream_generator(seed, stream, index, device)
    t, importance = loss.sample_times(shape[0], generator=generator, device=device)
    eps = torch.randn(shape, generator=generator, device=device)
    return t, importance, eps


class DivergenceGuard:
    """Counts updates skipped for a non-finite gradient and watches the loss against the lowest
    running median it has had (over ``window`` healthy steps); ``update`` names a reason to stop,
    ``check`` tests one loss (the probe before a checkpoint) against the same bar."""

    def __init__(self, max_skipped, factor, window=100):
        self.max_skipped, self.factor = max_skipped, factor
        self.history = deque(maxlen=window)
        self.reference = math.inf
        self.in_a_row, self.total = 0, 0

    def check(self, loss, what="the loss"):
        if not math.isfinite(loss):
            return f"{what} is {loss}"
        if self.factor and self.history and loss > self.factor * self.reference:
            return (f"{what} {loss:.4g} exceeds training.divergence_factor={self.factor:g} times the loss's running "
                    f"median {self.reference:.4g}")
        return None

    def update(self, loss, finite):
        """``finite``: whether the update went through (loss and gradient finite)."""
        if math.isfinite(loss) and (reason := self.check(loss)):
            return reason
        if not finite:
            self.in_a_row += 1
            self.total += 1
            if self.in_a_row >= self.max_skipped:
                return (f"{self.in_a_row} updates in a row had a non-finite gradient and were skipped "
                        f"(training.max_skipped_steps={self.max_skipped})")
            return None
        self.in_a_row = 0
        self.history.append(loss)
        self.reference = min(self.reference, statistics.median(self.history))
        return None

    def state_dict(self):
        return {"history": list(self.history), "reference": self.reference, "in_a_row": self.in_a_row, "total": self.total}

    def load_state_dict(self, state):
        self.history.extend(state["history"])
        self.reference, self.in_a_row, self.total = state["reference"], state["in_a_row"], state["total"]


class _Signals:
    """SIGINT / SIGTERM set ``signum`` instead of killing the run; a second one aborts at once."""

    def __init__(self):
        self.signum = None

    def handle(self, signum, frame):
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum


@contextmanager
def _caught_signals():
    caught = _Signals()
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return
    previous = {s: signal.signal(s, caught.handle) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield caught
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


class Trainer:
    def __init__(self, config, workdir, *, accept_config_changes=False, restart=False, progress=True):
        self.config = validate_config(upgrade_config(config))
        self.workdir = Path(workdir)
        self.checkpoint_dir = self.workdir / "checkpoints"
        self.progress = progress
        self.ctx = distributed.setup(config.device)
        self.lock = None
        if self.ctx.is_main:
            ensure_writable(self.workdir)
            self.lock = WorkdirLock(self.workdir).acquire()
            remove_stale_temp_files(self.checkpoint_dir)
        try:
            self._build(accept_config_changes, restart)
        except BaseException:
            self.close()
            raise

    def _build(self, accept_config_changes, restart):
        c = self.config
        torch.manual_seed(stream_seed(c.seed, "dropout", self.ctx.rank))  # per-rank stream: dropout and the like
        self.sde = build_sde(c.diffusion)
        self.loss = ScoreMatchingLoss.from_config(c.training, self.sde)
        self.source = BatchSource(load_dataset(c.data, "train"), c.training.batch_size, c.seed, self.ctx.device)
        self.rank_slice = _rank_slice(self.ctx, c.training.batch_size)
        self.model = build_model(c).to(self.ctx.device)
        self.ema = EMA(self.model, c.model.ema_rate)
        o = c.optim
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=o.lr, betas=(o.beta1, 0.999), eps=o.eps,
                                          weight_decay=o.weight_decay)
        self.guard = DivergenceGuard(c.training.max_skipped_steps, c.training.divergence_factor)
        self.step = 0
        self.last_checkpoint = None
        self._resume(accept_config_changes, restart)
        self.network = self.model
        if self.ctx.world_size > 1:
            device_ids = [self.ctx.device.index] if self.ctx.device.type == "cuda" else None
            self.network = DistributedDataParallel(self.model, device_ids=device_ids)
            self.network.parameterization = self.model.parameterization
        self.heldout = self._heldout_batch() if self.ctx.is_main else None  # the eval loss and the pre-save probe

    def close(self):
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    # --- state -----------------------------------------------------------------------------
    def state_dict(self):
        return {
            "step": self.step,
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "config": self.config.to_json(),
            "rng": rng_state(),
            "guard": self.guard.state_dict(),
        }

    def _resume(self, accept_config_changes, restart):
        if restart and self.ctx.is_main:
            quarantine_all(self.checkpoint_dir)
            metrics = self.workdir / "metrics.csv"
            if metrics.exists():
                metrics.rename(metrics.with_name("metrics.before_restart.csv"))
        if self.ctx.is_main:
            found = load_latest(self.checkpoint_dir, map_location="cpu", quarantine=True)  # RNG states stay on the CPU
        self.ctx.barrier()
        if not self.ctx.is_main:
            found = load_latest(self.checkpoint_dir, map_location="cpu")
        if found is None:
            return
        state, path = found
        differences = config_differences(state["config"], self.config)
        if differences and not accept_config_changes:
            raise ConfigMismatchError(
                f"the config differs from the one in {path}:\n  " + "\n  ".join(differences)
                + "\nresume with --accept_config_changes to continue anyway, or use a new --workdir"
            )
        self.model.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        set_rng_state(state["rng"])
        if "guard" in state:
            self.guard.load_state_dict(state["guard"])
        self.step, self.last_checkpoint = int(state["step"]), path
        if self.ctx.is_main:
            print(f"resumed from {path} at step {self.step}")

    def _weights_finite(self):
        return all(bool(torch.isfinite(p).all()) for m in (self.model, self.ema.model) for p in m.parameters())

    def _unsafe_to_save(self):
        """Why the current weights must not be saved (None if they may): non-finite, or a loss on the
        probe batch that the divergence guard rejects (an update that blew the weights up shows here,
        one step before the training loss would show it)."""
        if not self._weights_finite():
            return "the weights hold NaN or inf values"
        with torch.no_grad():
            x0, t, importance, eps = self.heldout
            probe = self.loss(self.model, x0, t, eps, importance).item()
        return self.guard.check(probe, "the loss of the current weights on the probe batch")

    def save(self):
        if self.ctx.is_main:
            reason = self._unsafe_to_save()
            if reason:
                raise DivergenceError(self._divergence_message(reason))
            c = self.config.training
            self.last_checkpoint = save_checkpoint(self.checkpoint_dir, self.step, self.state_dict(),
                                                   keep=c.keep_checkpoints, keep_every=c.keep_every)
        self.ctx.barrier()

    def _divergence_message(self, reason):
        advice = ("no checkpoint was saved before it: start again with a lower --config.optim.lr"
                  if self.last_checkpoint is None else
                  f"the last good checkpoint is {self.last_checkpoint}; resume from it with a lower learning rate: "
                  f"the same command with --config.optim.lr={self.config.optim.lr / 10:g} --accept_config_changes")
        return f"training diverged at step {self.step}: {reason}. Nothing was saved after it; {advice}"

    # --- one step ----------------------------------------------------------------------------
    def train_step(self):
        c = self.config
        indices = self.source.indices(self.step)
        x0 = self.source.fetch(indices[self.rank_slice])
        if c.data.random_flip:
            x0 = random_flips(x0, c.seed, self.step, self.rank_slice, len(indices))
        t, importance, eps = draw_noise(self.loss, c.seed, "step_noise", self.step, (len(indices),) + tuple(x0.shape[1:]),
                                        self.ctx.device)
        s = self.rank_slice
        loss = self.loss(self.network, x0, t[s], eps[s], importance[s])
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        clip = c.optim.grad_clip if c.optim.grad_clip > 0 else float("inf")
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip)
        loss_value = loss.item()
        finite = self.ctx.all_true(math.isfinite(loss_value) and bool(torch.isfinite(grad_norm)))
        lr = c.optim.lr * min(1.0, (self.step + 1) / max(c.optim.warmup, 1))
        if finite:
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            self.optimizer.step()
            self.ema.update(self.model)
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        reason = self.guard.update(loss_value, finite)
        if self.ctx.any_true(reason is not None):
            raise DivergenceError(self._divergence_message(reason or "another process diverged"))
        return loss_value, grad_norm.item(), lr

    # --- held-out loss -------------------------------------------------------------------------
    def _heldout_batch(self):
        """A fixed batch of the test split (of 'val' when the run holds one out, so that tuning never reads
        the test split) with fixed t and eps: a low-variance, comparable held-out loss."""
        c = self.config
        split = "val" if c.data.validation_fraction > 0 else "test"
        x0 = load_dataset(c.data, split).first(c.eval.batch_size).to(self.ctx.device)
        t, importance, eps = draw_noise(self.loss, c.seed, "heldout", 0, tuple(x0.shape), self.ctx.device)
        return x0, t, importance, eps

    @torch.no_grad()
    def heldout_loss(self):
        """The score-matching loss of the EMA weights on the held-out batch (score_sde's eval loss)."""
        x0, t, importance, eps = self.heldout
        return self.loss(self.ema.model, x0, t, eps, importance).item()

    # --- the loop ------------------------------------------------------------------------------
    def run(self):
        c = self.config.training
        logger = MetricsLogger(self.workdir, self.step) if self.ctx.is_main else None
        bar = tqdm(total=c.n_iters, initial=self.step, disable=not (self.progress and self.ctx.is_main), desc="train")
        window, started = [], time.perf_counter()
        saved_step, saved_at = self.step, time.monotonic()
        try:
            with _caught_signals() as caught:
                while self.step < c.n_iters:
                    loss, grad_norm, lr = self.train_step()
                    window.append(loss)
                    bar.update(1)
                    row = {}
                    if self.step % c.log_freq == 0 or self.step == c.n_iters:
                        mean_loss = self.ctx.mean(sum(window) / len(window))
                        rate = len(window) / (time.perf_counter() - started)
                        bar.set_postfix(loss=f"{mean_loss:.4g}", it_s=f"{rate:.1f}")
                        row = dict(loss=mean_loss, lr=lr, grad_norm=grad_norm, skipped_steps=self.guard.total,
                                   steps_per_sec=rate)
                        window, started = [], time.perf_counter()
                    if self.heldout is not None and c.eval_freq and self.step % c.eval_freq == 0:
                        row["eval_loss"] = self.heldout_loss()
                    if logger and row:
                        logger.log(step=self.step, **row)
                    due = (self.step % c.checkpoint_freq == 0 or self.step == c.n_iters
                           or time.monotonic() - saved_at >= 60 * c.checkpoint_minutes)
                    stop = caught.signum is not None
                    if self.ctx.any_true(due or stop):
                        self.save()
                        saved_step, saved_at = self.step, time.monotonic()
                    if self.ctx.is_main and c.snapshot_samples > 0 and self.step % c.snapshot_freq == 0:
                        self.snapshot_grid()
                    if self.ctx.any_true(stop):
                        name = signal.Signals(caught.signum or signal.SIGTERM).name
                        raise TrainingInterrupted(caught.signum or signal.SIGTERM,
                                                  f"{name}: stopped at step {self.step} after checkpoint "
                                                  f"{self.last_checkpoint}; run the same command to resume")
        finally:
            bar.close()
            if logger:
                logger.close()
        if saved_step != self.step:  # n_iters reached before this run took a step
            self.save()
        return TrainResult(self.step, self.last_checkpoint, self.workdir)

    def snapshot_grid(self):
        from sde_edge.figures import save_grid
        from sde_edge.sampling import sample

        c = self.config
        generator = stream_generator(c.seed, "snapshot", 0, self.ctx.device)
        result = sample(c.sampling.method, self.ema.model, self.sde, image_shape(c, c.training.snapshot_samples),
                        steps=c.sampling.steps, generator=generator, grid=c.sampling.grid)
        save_grid(result.samples, self.workdir / "samples" / f"step_{self.step:08d}.png")


class MetricsLogger:
    """metrics.csv always (rows past the resumed step are dropped, so steps strictly increase);
    TensorBoard when importable (train/* and eval/loss)."""

    def __init__(self, workdir, start_step):
        self.path = Path(workdir) / "metrics.csv"
        rows = []
        if self.path.exists():
            with open(self.path, newline="") as handle:
                rows = [row for row in csv.DictReader(handle) if row.get("step") and int(row["step"]) <= start_step]
        self.handle = open(self.path, "w", newline="")
        self.writer = csv.DictWriter(self.handle, fieldnames=METRICS, restval="", extrasaction="ignore")
        self.writer.writeheader()
        self.writer.writerows(rows)
        self.handle.flush()
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tensorboard = SummaryWriter(str(Path(workdir) / "tensorboard"))
        except ImportError:
            self.tensorboard = None

    def log(self, **row):
        self.writer.writerow(row)
        self.handle.flush()
        if self.tensorboard is not None:
            for key, value in row.items():
                if key != "step":
                    self.tensorboard.add_scalar("eval/loss" if key == "eval_loss" else f"train/{key}", value, row["step"])

    def close(self):
        self.handle.close()
        if self.tensorboard is not None:
            self.tensorboard.close()


def train(config, workdir, *, accept_config_changes=False, restart=False, progress=True):
    """Train (or resume) the run in ``workdir``; returns the final step and checkpoint."""
    trainer = None
    try:
        trainer = Trainer(config, workdir, accept_config_changes=accept_config_changes, restart=restart, progress=progress)
        return trainer.run()
    finally:
        if trainer is not None:
            trainer.close()
        distributed.teardown()
