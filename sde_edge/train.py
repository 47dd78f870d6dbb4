"""The training loop behind ``sde-edge train`` (score_sde's names, crash-safe, DDP-ready).

Reproducibility by construction: the batch of step s is a slice of an epoch
permutation seeded by (seed, epoch), and its t and eps come from a generator
seeded by (seed, s), drawn for the *global* batch and sliced per rank. A resumed
run therefore sees exactly the batches and noise it would have seen, a torchrun
run with K ranks matches a single process with the same global batch, and the
checkpoint only needs the step (plus the RNG states, for dropout).
"""
import csv
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from sde_edge import distributed
from sde_edge.checkpoint import load_latest, rng_state, save_checkpoint, set_rng_state
from sde_edge.config import validate_config
from sde_edge.data import load_dataset
from sde_edge.losses import per_pixel_loss, reduce_loss, sample_times
from sde_edge.models import EMA, build_model
from sde_edge.sde import EdgePreservingSDE

log = logging.getLogger(__name__)

# Fields that may change between a run and its resumption: they do not change what is learned.
RESUMABLE_CHANGES = ("device", "training.n_iters", "training.log_freq", "training.snapshot_freq",
                     "training.snapshot_samples", "training.keep_checkpoints", "sampling.", "eval.")
METRICS = ("step", "loss", "lr", "grad_norm", "steps_per_sec")


class NonFiniteLossError(RuntimeError):
    pass


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
    saved, current = flatten_config(saved_json), flatten_config(config)
    return [
        f"{key}: {saved.get(key, '<absent>')!r} in the checkpoint, {current.get(key, '<absent>')!r} now"
        for key in sorted(set(saved) | set(current))
        if saved.get(key) != current.get(key) and not key.startswith(RESUMABLE_CHANGES)
    ]


class BatchSource:
    """Global batches by step: slice ``step`` of a per-epoch permutation seeded by (seed, epoch)."""

    def __init__(self, dataset, batch_size, seed, device):
        if len(dataset) < batch_size:
            raise ValueError(f"training.batch_size={batch_size} exceeds the {len(dataset)} training images")
        self.dataset, self.batch_size, self.seed, self.device = dataset, batch_size, seed, device
        self.per_epoch = len(dataset) // batch_size
        self._epoch, self._order = None, None
        if isinstance(dataset, torch.Tensor):
            self.dataset = dataset.to(device)

    def position(self, step):
        epoch, index = divmod(step, self.per_epoch)
        return {"epoch": epoch, "batch_in_epoch": index}

    def indices(self, step):
        epoch, index = divmod(step, self.per_epoch)
        if epoch != self._epoch:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._epoch, self._order = epoch, torch.randperm(len(self.dataset), generator=generator)
        return self._order[index * self.batch_size : (index + 1) * self.batch_size]

    def fetch(self, indices):
        if isinstance(self.dataset, torch.Tensor):
            return self.dataset[indices.to(self.device)]
        return torch.stack([self.dataset[i] for i in indices.tolist()]).to(self.device)


def _rank_slice(ctx, batch_size):
    if batch_size % ctx.world_size:
        raise ValueError(f"training.batch_size={batch_size} must be divisible by the {ctx.world_size} torchrun processes")
    local = batch_size // ctx.world_size
    return slice(ctx.rank * local, (ctx.rank + 1) * local)


def _step_noise(config, sde, step, shape, device):
    """t, importance weights and eps for the global batch of ``step``."""
    generator = torch.Generator(device).manual_seed(config.seed * 1_000_003 + step + 7_777_777)
    t, importance = sample_times(sde, shape[0], time_sampling=config.training.time_sampling,
                                 weighting=config.training.weighting, generator=generator, device=device)
    eps = torch.randn(shape, generator=generator, device=device)
    return t, importance, eps


class Trainer:
    def __init__(self, config, workdir, *, accept_config_changes=False, progress=True):
        self.config = validate_config(config)
        self.workdir = Path(workdir)
        self.progress = progress
        self.ctx = distributed.setup(config.device)
        torch.manual_seed(config.seed + self.ctx.rank)  # per-rank stream: dropout and the like
        self.sde = EdgePreservingSDE(config.diffusion)
        self.source = BatchSource(load_dataset(config.data, "train"), config.training.batch_size, config.seed, self.ctx.device)
        self.rank_slice = _rank_slice(self.ctx, config.training.batch_size)
        self.model = build_model(config).to(self.ctx.device)
        self.ema = EMA(self.model, config.model.ema_rate)
        o = config.optim
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=o.lr, betas=(o.beta1, 0.999), eps=o.eps, weight_decay=o.weight_decay)
        self.step = 0
        self.checkpoint_dir = self.workdir / "checkpoints"
        self._resume(accept_config_changes)
        self.network = self.model
        if self.ctx.world_size > 1:
            device_ids = [self.ctx.device.index] if self.ctx.device.type == "cuda" else None
            self.network = DistributedDataParallel(self.model, device_ids=device_ids)
            self.network.parameterization = self.model.parameterization

    # --- state -----------------------------------------------------------------------------
    def state_dict(self):
        return {
            "step": self.step,
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "config": self.config.to_json(),
            "rng": rng_state(),
            "data": self.source.position(self.step),
        }

    def _resume(self, accept_config_changes):
        found = load_latest(self.checkpoint_dir, map_location="cpu")  # RNG states must stay CPU tensors
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
        self.step = int(state["step"])
        if self.ctx.is_main:
            print(f"resumed from {path} at step {self.step}")

    def save(self):
        if self.ctx.is_main:
            save_checkpoint(self.checkpoint_dir, self.step, self.state_dict(), keep=self.config.training.keep_checkpoints)
        self.ctx.barrier()

    # --- one step ----------------------------------------------------------------------------
    def train_step(self):
        c = self.config
        indices = self.source.indices(self.step)
        x0 = self.source.fetch(indices[self.rank_slice])
        t, importance, eps = _step_noise(c, self.sde, self.step, (len(indices),) + tuple(x0.shape[1:]), self.ctx.device)
        s = self.rank_slice
        per_pixel = per_pixel_loss(self.network, self.sde, x0, t[s], eps[s], weighting=c.training.weighting, importance=importance[s])
        loss = reduce_loss(per_pixel, c.training.reduce_mean)
        if not self.ctx.all_true(torch.isfinite(loss).item()):
            raise NonFiniteLossError(
                f"the loss is {loss.item()} at step {self.step}; stopping without saving. The last good checkpoint "
                f"is kept in {self.checkpoint_dir}. Lower optim.lr, tighten optim.grad_clip or check the data."
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        clip = c.optim.grad_clip if c.optim.grad_clip > 0 else float("inf")
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip)
        lr = c.optim.lr * min(1.0, (self.step + 1) / max(c.optim.warmup, 1))
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.step()
        self.ema.update(self.model)
        self.step += 1
        return loss.detach(), grad_norm.detach(), lr

    # --- the loop ------------------------------------------------------------------------------
    def run(self):
        c = self.config.training
        logger = MetricsLogger(self.workdir, self.step) if self.ctx.is_main else None
        bar = tqdm(total=c.n_iters, initial=self.step, disable=not (self.progress and self.ctx.is_main), desc="train")
        window, started = [], time.perf_counter()
        last_saved = self.step
        while self.step < c.n_iters:
            loss, grad_norm, lr = self.train_step()
            window.append(loss)
            bar.update(1)
            if self.step % c.log_freq == 0 or self.step == c.n_iters:
                mean_loss = torch.stack(window).mean()
                if self.ctx.world_size > 1:
                    torch.distributed.all_reduce(mean_loss)
                    mean_loss /= self.ctx.world_size
                rate = len(window) / (time.perf_counter() - started)
                bar.set_postfix(loss=f"{mean_loss.item():.4g}", it_s=f"{rate:.1f}")
                if logger:
                    logger.log(step=self.step, loss=mean_loss.item(), lr=lr, grad_norm=grad_norm.item(), steps_per_sec=rate)
                window, started = [], time.perf_counter()
            if self.step % c.snapshot_freq == 0 or self.step == c.n_iters:
                self.save()
                last_saved = self.step
                if self.ctx.is_main and c.snapshot_samples > 0:
                    self.snapshot_grid()
        bar.close()
        if last_saved != self.step:  # n_iters reached before this run took a step
            self.save()
        if logger:
            logger.close()
        return TrainResult(self.step, self.checkpoint_dir / f"checkpoint_{self.step:08d}.pt", self.workdir)

    def snapshot_grid(self):
        from sde_edge.figures import save_grid
        from sde_edge.sampling import sample

        c = self.config
        generator = torch.Generator(self.ctx.device).manual_seed(c.seed)
        shape = (c.training.snapshot_samples, c.data.num_channels, c.data.image_size, c.data.image_size)
        result = sample(c.sampling.method, self.ema.model, self.sde, shape, steps=c.sampling.steps,
                        generator=generator, grid=c.sampling.grid)
        save_grid(result.samples, self.workdir / "samples" / f"step_{self.step:08d}.png")


class MetricsLogger:
    """metrics.csv always (rows past the resumed step are dropped); TensorBoard when importable."""

    def __init__(self, workdir, start_step):
        self.path = Path(workdir) / "metrics.csv"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        rows = []
        if self.path.exists():
            with open(self.path, newline="") as handle:
                rows = [row for row in csv.DictReader(handle) if int(row["step"]) <= start_step]
        self.handle = open(self.path, "w", newline="")
        self.writer = csv.DictWriter(self.handle, fieldnames=METRICS)
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
                    self.tensorboard.add_scalar(f"train/{key}", value, row["step"])

    def close(self):
        self.handle.close()
        if self.tensorboard is not None:
            self.tensorboard.close()


def train(config, workdir, *, accept_config_changes=False, progress=True):
    """Train (or resume) the run in ``workdir``; returns the final step and checkpoint."""
    try:
        return Trainer(config, workdir, accept_config_changes=accept_config_changes, progress=progress).run()
    finally:
        distributed.teardown()
