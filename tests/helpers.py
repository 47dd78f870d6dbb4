"""Shared test helpers (imported as a module; conftest.py holds only pytest hooks and fixtures)."""
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sde_edge.oracle import rectangle_images

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "configs" / "tiny.py"


@dataclass(frozen=True)
class PaperSchedule:
    """The paper's VP schedule, written out independently of the library (N = 500 steps,
    beta 1e-4 .. 2e-2 per step), so tests compare the code against these numbers."""

    n: int = 500
    beta_min: float = 1e-4
    beta_max: float = 2e-2

    def log_abar(self, t):
        t = np.asarray(t, dtype=np.float64)
        return -(self.n * self.beta_min * t + 0.5 * self.n * (self.beta_max - self.beta_min) * t**2)

    def beta(self, t):
        return self.n * (self.beta_min + np.asarray(t, dtype=np.float64) * (self.beta_max - self.beta_min))

    def log_snr(self, t):
        log_abar = self.log_abar(t)
        return log_abar - np.log(-np.expm1(log_abar))


def edge_rich_images(k, size=8, seed=0, dtype=torch.float64):
    """K distinct images in [-1, 1] made of random rectangles: strong edges, flat interiors."""
    return rectangle_images(k, size=size, seed=seed, dtype=dtype)


def tensors(tree, prefix=""):
    """{dotted name: tensor} of a nested dict / list of tensors (a checkpoint's state)."""
    out = {}
    items = tree.items() if isinstance(tree, dict) else enumerate(tree) if isinstance(tree, (list, tuple)) else []
    for key, value in items:
        if isinstance(value, torch.Tensor):
            out[f"{prefix}{key}"] = value
        else:
            out.update(tensors(value, f"{prefix}{key}."))
    return out


def simulate_forward_sde(sde, x0, statistic, checkpoints, n_paths=20_000, n_steps=1000, seed=4):
    """Euler-Maruyama paths of dy = f y dt + G(x0, t) dW from y0 = U^T x0 in the process's basis;
    yields (t, paths) at the step counts in ``checkpoints``."""
    y = sde.to_basis(x0).expand(n_paths, -1, -1, -1).clone()
    generator = torch.Generator().manual_seed(seed)
    dt = 1.0 / n_steps
    for i in range(n_steps):
        t = torch.full((1, 1, 1, 1), i * dt, dtype=x0.dtype)
        g_sq = sde.diffusion_sq(statistic, t, y)
        y = (
            y
            + sde.drift_coef(t, y) * y * dt
            + torch.sqrt(g_sq * dt) * torch.randn(y.shape, generator=generator, dtype=x0.dtype)
        )
        if i + 1 in checkpoints:
            yield (i + 1) * dt, y


def assert_paths_match_marginal(sde, x0, n_steps=1000, times=(0.2, 0.4, 1.0), tolerance=0.03):
    """Monte Carlo against the closed form: per coordinate, the paths' mean and std within
    ``tolerance`` (relative to the std) of marginal_prob's."""
    checkpoints = {round(t * n_steps) for t in times}
    for t, y in simulate_forward_sde(sde, x0, sde.noise_statistic(x0), checkpoints, n_steps=n_steps):
        mean, std = sde.marginal_prob(x0, t)
        mean_error = (y.mean(0) - mean[0]).abs() / std[0]
        std_error = (y.std(0) - std[0]).abs() / std[0]
        assert mean_error.max() < tolerance, f"t={t}: mean off by {mean_error.max():.4f} std"
        assert std_error.max() < tolerance, f"t={t}: std off by {std_error.max():.4f} std"
