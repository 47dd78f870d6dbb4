"""Training the first stage (``sde-edge train-autoencoder``) with the score models' machinery.

The loss per image is LDM's without its two fetched networks: an L1 reconstruction term, plus
``edge_weight`` times the L1 distance of the Sobel gradients (it keeps edges sharp, the job LDM gives
its LPIPS and patch-GAN terms, whose weights cannot be downloaded here), plus ``kl_weight`` times the
KL divergence of q(z | x) from N(0, I), summed over latent elements and divided by the pixels (LDM's
ratio: KL summed, weight 1e-6, against a summed reconstruction). Batches come from ``BatchSource``
(a function of seed and step), the posterior sample from the ``posterior`` stream at each step, so a
resumed run trains exactly as an uninterrupted one; checkpoints, the workdir lock, Ctrl-C and the
divergence guard are ``train``'s. At the end it measures the scaling factor on the train split and
writes ``first_stage/`` (see ``first_stage``), a reconstruction grid and the held-out PSNR.
"""
import logging
import math
import signal
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from sde_edge.data.datasets import load_dataset
from sde_edge.devices import resolve_device
from sde_edge.figures import save_grid
from sde_edge.latent.first_stage import FIRST_STAGE, FirstStage, build_autoencoder, save_first_stage
from sde_edge.rng import stream_generator
from sde_edge.storage.checkpoint import load_latest, remove_stale_temp_files, rng_state, save_checkpoint, set_rng_state
from sde_edge.storage.workdir import WorkdirLock, ensure_writable
from sde_edge.training.batches import BatchSource
from sde_edge.training.metrics_log import MetricsLogger
from sde_edge.training.safety import (
    ConfigMismatchError,
    DivergenceError,
    DivergenceGuard,
    TrainingInterrupted,
    caught_signals,
    config_differences,
)
from sde_edge.training.schedule import warmup_lr

log = logging.getLogger(__name__)
_SOBEL = torch.tensor([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]])


def sobel_gradients(images):
    """(B, 2C, H, W): the horizontal and vertical Sobel responses of every channel."""
    kernels = torch.stack([_SOBEL, _SOBEL.T]).unsqueeze(1).to(images)
    channels = images.shape[1]
    return F.conv2d(F.pad(images, (1, 1, 1, 1), mode="replicate"), kernels.repeat(channels, 1, 1, 1), groups=channels)


def autoencoder_loss(vae, images, noise, kl_weight, edge_weight):
    """(loss, reconstruction L1) of one batch; ``noise`` draws the posterior sample."""
    posterior = vae.encode(images).latent_dist
    reconstruction = vae.decode(posterior.mean + posterior.std * noise).sample
    l1 = (reconstruction - images).abs().mean()
    edges = (sobel_gradients(reconstruction) - sobel_gradients(images)).abs().mean()
    kl = 0.5 * (posterior.mean.square() + posterior.var - 1.0 - posterior.logvar).sum() / images.numel()
    return l1 + edge_weight * edges + kl_weight * kl, l1


def psnr(images, reconstructions):
    """Mean PSNR in dB of images in [-1, 1] (peak-to-peak 2)."""
    mse = (images - reconstructions).square().flatten(1).mean(1).clamp_min(1e-12)
    return float((10 * torch.log10(4.0 / mse)).mean())


class AutoencoderTrainer:
    def __init__(self, config, workdir, *, accept_config_changes=False, progress=True):
        self.config, self.workdir, self.progress = config, Path(workdir), progress
        self.device = resolve_device(config.device, field="device")
        ensure_writable(self.workdir)
        self.lock = WorkdirLock(self.workdir).acquire()
        try:
            self.checkpoints = self.workdir / "checkpoints"
            remove_stale_temp_files(self.checkpoints)
            torch.manual_seed(config.seed)
            d = config.data
            self.vae = build_autoencoder(config.autoencoder, d.num_channels, d.image_size).to(self.device)
            self.optimizer = torch.optim.Adam(self.vae.parameters(), lr=config.training.lr)
            self.source = BatchSource(load_dataset(d, "train"), config.training.batch_size, config.seed, self.device)
            self.heldout = load_dataset(d, "test").first(config.eval.batch_size).to(self.device)
            self.guard = DivergenceGuard(config.training.max_skipped_steps, config.training.divergence_factor)
            self.step = 0
            self._resume(accept_config_changes)
        except BaseException:
            self.close()
            raise

    def close(self):
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def state_dict(self):
        return {"step": self.step, "model": self.vae.state_dict(), "optimizer": self.optimizer.state_dict(),
                "config": self.config.to_json(), "rng": rng_state(), "guard": self.guard.state_dict()}

    def _resume(self, accept_config_changes):
        found = load_latest(self.checkpoints, map_location="cpu", quarantine=True)
        if found is None:
            return
        state, path = found
        differences = config_differences(state["config"], self.config)
        if differences and not accept_config_changes:
            raise ConfigMismatchError(f"the config differs from the one in {path}:\n  " + "\n  ".join(differences)
                                      + "\nresume with --accept_config_changes, or use a new --workdir")
        self.vae.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        set_rng_state(state["rng"])
        self.guard.load_state_dict(state["guard"])
        self.step = int(state["step"])
        print(f"resumed from {path} at step {self.step}")

    def train_step(self):
        c = self.config.training
        images = self.source.batch(self.step)
        generator = stream_generator(self.config.seed, "posterior", self.step, self.device)
        shape = (images.shape[0], self.config.autoencoder.latent_channels) + tuple(
            s // 2 ** (len(self.config.autoencoder.block_out_channels) - 1) for s in images.shape[2:])
        noise = torch.randn(shape, generator=generator, device=self.device)
        loss, l1 = autoencoder_loss(self.vae, images, noise, c.kl_weight, c.edge_weight)
        for group in self.optimizer.param_groups:
            group["lr"] = warmup_lr(c.lr, self.step, c.warmup)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.vae.parameters(), c.grad_clip or float("inf"))
        finite = math.isfinite(loss.item()) and bool(torch.isfinite(grad_norm))
        if finite:
            self.optimizer.step()
        self.step += 1
        reason = self.guard.update(loss.item(), finite)
        if reason is not None:
            raise DivergenceError(f"autoencoder training diverged at step {self.step}: {reason}; "
                                  "start again with a lower --config.training.lr")
        return loss.item(), l1.item()

    @torch.no_grad()
    def heldout_psnr(self):
        stage = FirstStage(self.vae, 1.0, None)
        value = psnr(self.heldout, stage.decode(stage.encode(self.heldout)))
        self.vae.train().requires_grad_(True)
        return value

    def save(self):
        c = self.config.training
        save_checkpoint(self.checkpoints, self.step, self.state_dict(), keep=c.keep_checkpoints)

    def run(self):
        c = self.config.training
        logger = MetricsLogger(self.workdir, self.step, self.device, columns=("step", "loss", "l1", "eval_psnr"))
        bar = tqdm(total=c.n_iters, initial=self.step, disable=not self.progress, desc="train-autoencoder")
        try:
            with caught_signals() as caught:
                while self.step < c.n_iters:
                    loss, l1 = self.train_step()
                    bar.update(1)
                    row = dict(loss=loss, l1=l1) if self.step % c.log_freq == 0 else {}
                    if c.eval_freq and self.step % c.eval_freq == 0:
                        row["eval_psnr"] = self.heldout_psnr()
                        bar.set_postfix(loss=f"{loss:.4g}", psnr=f"{row['eval_psnr']:.2f}")
                    if row:
                        logger.log(step=self.step, **row)
                    if self.step % c.checkpoint_freq == 0 or caught.signum is not None:
                        self.save()
                    if caught.signum is not None:
                        raise TrainingInterrupted(caught.signum, f"{signal.Signals(caught.signum).name}: stopped at "
                                                                 f"step {self.step}; run the same command to resume")
        finally:
            bar.close()
            logger.close()
        self.save()
        return self.finish()

    @torch.no_grad()
    def finish(self):
        """Measure the scaling factor on the train split, write first_stage/ and the reconstruction grid."""
        d = self.config.data
        stage = FirstStage(self.vae, 1.0, None)
        train = load_dataset(d, "train")
        count = min(len(train), self.config.eval.scale_images)
        latents = stage.encode(train.first(count).to(self.device), self.config.eval.batch_size)
        scale = 1.0 / float(latents.float().std())
        folder = save_first_stage(self.vae, self.workdir / FIRST_STAGE, scale_factor=scale, image_size=d.image_size,
                                  channels=d.num_channels, step=self.step, data=d.to_dict())
        test = load_dataset(d, "test")
        images = test.first(min(len(test), self.config.eval.psnr_images)).to(self.device)
        recon = stage.decode(stage.encode(images, self.config.eval.batch_size))
        value = psnr(images, recon)
        grid = save_grid(torch.cat([images[:32], recon[:32]]).cpu(), self.workdir / "reconstructions.png", nrow=8)
        return dict(folder=folder, scale_factor=scale, test_psnr=value, grid=grid, step=self.step,
                    latent_std=float(latents.std()) * scale, images=len(images))


def train_autoencoder(config, workdir, *, accept_config_changes=False, progress=True):
    trainer = AutoencoderTrainer(config, workdir, accept_config_changes=accept_config_changes, progress=progress)
    try:
        return trainer.run()
    finally:
        trainer.close()
