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
import logging
import math
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from sde_edge.config import image_shape, upgrade_config, validate_config
from sde_edge.figures import save_grid
from sde_edge.latent.latents import check_same_first_stage, decoder_of, first_stage_digest, training_images
from sde_edge.models import EMA, build_model
from sde_edge.processes.registry import build_sde
from sde_edge.rng import stream_generator, stream_seed
from sde_edge.sampling import sample
from sde_edge.storage.checkpoint import (
    load_latest,
    quarantine_all,
    remove_stale_temp_files,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from sde_edge.storage.workdir import WorkdirLock, ensure_writable
from sde_edge.training import distributed
from sde_edge.training.batches import BatchSource, draw_noise, random_flips, rank_slice
from sde_edge.training.distill import is_distillation, training_loss
from sde_edge.training.fast import Updater, choose_convolutions, fast_network
from sde_edge.training.metrics_log import LossWindow, MetricsLogger
from sde_edge.training.safety import (
    ConfigMismatchError,
    DivergenceError,
    DivergenceGuard,
    TrainingError,
    TrainingInterrupted,
    caught_signals,
    config_differences,
    divergence_message,
)
from sde_edge.training.schedule import warmup_lr

__all__ = ["Trainer", "TrainResult", "TrainingError", "DivergenceError", "TrainingInterrupted", "train"]

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    step: int
    checkpoint: Path
    workdir: Path


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
        self.loss = training_loss(c, self.sde, self.workdir, self.ctx.device)  # score matching or distillation
        self.rank_slice = rank_slice(self.ctx, c.training.batch_size)
        self.latent_digest = first_stage_digest(c.data)  # None for a pixel-space run
        self.model = build_model(c).to(self.ctx.device)
        choose_convolutions(c, self.ctx.device)
        self.ema = EMA(self.model, c.model.ema_rate)
        self.updater = Updater(self.model, c, self.ctx.device)
        self.optimizer = self.updater.optimizer
        self.guard = DivergenceGuard(c.training.max_skipped_steps, c.training.divergence_factor)
        self.step = 0
        self.last_checkpoint = None
        self._resume(accept_config_changes, restart)  # before the data: a latent run's first stage is checked first
        if self.step == 0 and is_distillation(c):  # a student starts as its teacher
            self.model.load_state_dict(self.loss.teacher.model.state_dict())
            self.ema = EMA(self.model, c.model.ema_rate)
        images = training_images(c.data, "train", self.ctx.device, progress=self.progress and self.ctx.is_main)
        self.source = BatchSource(images, c.training.batch_size, c.seed, self.ctx.device, self.rank_slice,
                                  c.data.num_workers)
        self.network = self.model
        if self.ctx.world_size > 1:
            device_ids = [self.ctx.device.index] if self.ctx.device.type == "cuda" else None
            self.network = DistributedDataParallel(self.model, device_ids=device_ids)
            self.network.parameterization = self.model.parameterization
        self.network = fast_network(self.model, self.network, c)
        self.heldout = self._heldout_batch() if self.ctx.is_main else None  # the eval loss and the pre-save probe

    def close(self):
        if getattr(self, "source", None) is not None:
            self.source.close()
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
            **({"latent_autoencoder": self.latent_digest} if self.latent_digest else {}),
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
        check_same_first_stage(state.get("latent_autoencoder"), self.latent_digest, self.config.data, path)
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
        return divergence_message(self.step, reason, self.last_checkpoint, self.config.optim.lr)

    # --- one step ----------------------------------------------------------------------------
    def train_step(self):
        c = self.config
        x0 = self.source.batch(self.step)
        batch_size = c.training.batch_size  # the global batch: flips and noise are drawn for all ranks
        if c.data.random_flip:
            x0 = random_flips(x0, c.seed, self.step, self.rank_slice, batch_size)
        t, importance, eps = draw_noise(
            self.loss, c.seed, "step_noise", self.step, (batch_size,) + tuple(x0.shape[1:]), self.ctx.device
        )
        s = self.rank_slice
        loss = self.loss(self.network, x0, t[s], eps[s], importance[s])
        grad_norm = self.updater.backward(loss)
        loss_value = loss.item()
        gradient_finite = self.ctx.all_true(bool(torch.isfinite(grad_norm)))
        # an fp16 overflow in the gradient is the scaler's to skip (it lowers the scale), not a divergence
        finite = self.ctx.all_true(math.isfinite(loss_value)) and (gradient_finite or self.updater.scaled)
        lr = warmup_lr(c.optim.lr, self.step, c.optim.warmup)
        if self.updater.step(lr, apply=finite and gradient_finite):
            self.ema.update(self.model)
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
        x0 = training_images(c.data, split, self.ctx.device, progress=self.progress)
        x0 = x0.first(c.eval.batch_size).to(self.ctx.device)
        t, importance, eps = draw_noise(self.loss, c.seed, "heldout", 0, tuple(x0.shape), self.ctx.device)
        return x0, t, importance, eps

    @torch.no_grad()
    def heldout_loss(self):
        """The score-matching loss of the EMA weights on the held-out batch (score_sde's eval loss)."""
        x0, t, importance, eps = self.heldout
        return self.loss(self.ema.model, x0, t, eps, importance).item()

    # --- the loop ------------------------------------------------------------------------------
    def run(self):
        """Step, log, evaluate, save, snapshot, stop: until n_iters or a signal."""
        c = self.config.training
        self._logger = self.ctx.is_main and MetricsLogger(self.workdir, self.step, self.ctx.device,
                                                          self.ctx.world_size)
        self._bar = tqdm(total=c.n_iters, initial=self.step, disable=not (self.progress and self.ctx.is_main),
                         desc="train")
        self._window = LossWindow()
        self._saved_step, self._saved_at = self.step, time.monotonic()
        try:
            with caught_signals() as caught:
                while self.step < c.n_iters:
                    loss, grad_norm, lr = self.train_step()
                    self._bar.update(1)
                    self._log(self._training_row(loss, grad_norm, lr) | self._evaluation_row())
                    signum = caught.signum
                    self._save_if_due(stop=signum is not None)
                    self._snapshot_if_due()
                    self._stop_if_signalled(signum)
        finally:
            self._bar.close()
            if self._logger:
                self._logger.close()
        if self._saved_step != self.step:  # n_iters reached before this run took a step
            self.save()
        return TrainResult(self.step, self.last_checkpoint, self.workdir)

    def _training_row(self, loss, grad_norm, lr):
        """The window's mean loss and rate at every log_freq-th step (and the last), else {}."""
        c = self.config.training
        self._window.add(loss)
        if self.step % c.log_freq and self.step != c.n_iters:
            return {}
        mean_loss, rate = self._window.close(self.ctx.mean)
        self._bar.set_postfix(loss=f"{mean_loss:.4g}", it_s=f"{rate:.1f}")
        return dict(loss=mean_loss, lr=lr, grad_norm=grad_norm, skipped_steps=self.guard.total, steps_per_sec=rate)

    def _evaluation_row(self):
        c = self.config.training
        if self.heldout is None or not c.eval_freq or self.step % c.eval_freq:
            return {}
        return {"eval_loss": self.heldout_loss()}

    def _log(self, row):
        if self._logger and row:
            self._logger.log(step=self.step, **row)

    def _save_if_due(self, stop):
        """Checkpoint every checkpoint_freq steps, every checkpoint_minutes, at the end and on a signal."""
        c = self.config.training
        due = (self.step % c.checkpoint_freq == 0 or self.step == c.n_iters
               or time.monotonic() - self._saved_at >= 60 * c.checkpoint_minutes)
        if self.ctx.any_true(due or stop):
            self.save()
            self._saved_step, self._saved_at = self.step, time.monotonic()

    def _snapshot_if_due(self):
        c = self.config.training
        if self.ctx.is_main and c.snapshot_samples > 0 and self.step % c.snapshot_freq == 0:
            self.snapshot_grid()

    def _stop_if_signalled(self, signum):
        """After the checkpoint of a signalled step: stop every rank (any rank's signal stops all)."""
        if self.ctx.any_true(signum is not None):
            signum = signum or signal.SIGTERM
            raise TrainingInterrupted(signum, f"{signal.Signals(signum).name}: stopped at step {self.step} after "
                                              f"checkpoint {self.last_checkpoint}; run the same command to resume")

    def snapshot_grid(self):
        c = self.config
        generator = stream_generator(c.seed, "snapshot", 0, self.ctx.device)
        result = sample(c.sampling.method, self.ema.model, self.sde, image_shape(c, c.training.snapshot_samples),
                        steps=c.sampling.steps, generator=generator, grid=c.sampling.grid)
        images = decoder_of(c.data, self.ctx.device)(result.samples)
        save_grid(images, self.workdir / "samples" / f"step_{self.step:08d}.png")


def train(config, workdir, *, accept_config_changes=False, restart=False, progress=True):
    """Train (or resume) the run in ``workdir``; returns the final step and checkpoint."""
    trainer = None
    try:
        trainer = Trainer(
            config, workdir, accept_config_changes=accept_config_changes, restart=restart, progress=progress
        )
        return trainer.run()
    finally:
        if trainer is not None:
            trainer.close()
        distributed.teardown()
