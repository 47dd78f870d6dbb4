"""An exact model for tests: data = K fixed images with weights (SPEC section 7).

Every marginal is a mixture of diagonal Gaussians,

    p_t(x) = sum_k w_k N(x; a(t) mu_k, diag sigma(mu_k, t)^2),

so the score, E[x0 | x_t] and the network output of each parameterisation are
known exactly (log-sum-exp over k). The oracle plugs into every sampler and
the likelihood code like a trained network.
"""
import math

import torch

from sde_edge.config import PARAMETERIZATIONS
from sde_edge.sde import time_like


class MixtureOracle:
    def __init__(self, images, weights, sde, parameterization="scaled_eps"):
        if images.dim() != 4:
            raise ValueError(f"images must have shape (K, C, H, W), got {tuple(images.shape)}")
        weights = torch.as_tensor(weights, dtype=images.dtype, device=images.device)
        if weights.shape != (images.shape[0],) or bool((weights <= 0).any()):
            raise ValueError(f"weights must be {images.shape[0]} positive numbers, one per image, got {weights}")
        if parameterization not in PARAMETERIZATIONS:
            raise ValueError(f"parameterization must be one of {PARAMETERIZATIONS}, got {parameterization!r}")
        self.images = images
        self.log_weights = torch.log(weights / weights.sum())
        self.sde = sde
        self.parameterization = parameterization
        self._edges = sde.edge_map(images)  # (K, 1, H, W): fixed, so computed once

    @property
    def weights(self):
        return self.log_weights.exp()

    def _components(self, x, t):
        """Per-sample component means a mu_k and stds sigma(mu_k, t): (B, K, C, H, W)."""
        t = time_like(t, x)  # (B, 1, 1, 1)
        a = self.sde.signal_coef(t)[:, None]
        std = self.sde.std_from_edges(self._edges[None], t[:, None]).expand(-1, *self.images.shape)
        return a * self.images[None], std

    def _log_densities(self, x, t):
        """log w_k + log N(x; a mu_k, sigma_k^2) for each sample and component, (B, K)."""
        mean, std = self._components(x, t)
        z = (x[:, None] - mean) / std
        dims = self.images[0].numel()
        log_normal = -0.5 * z.square().flatten(2).sum(-1) - std.log().flatten(2).sum(-1) - 0.5 * dims * math.log(2 * math.pi)
        return self.log_weights + log_normal

    def log_prob(self, x, t):
        """log p_t(x), shape (B,)."""
        return torch.logsumexp(self._log_densities(x, t), dim=1)

    def posterior(self, x, t):
        """p(k | x_t), shape (B, K)."""
        return torch.softmax(self._log_densities(x, t), dim=1)

    def posterior_mean(self, x, t):
        """E[x0 | x_t] = sum_k p(k | x_t) mu_k."""
        return torch.einsum("bk,kchw->bchw", self.posterior(x, t), self.images)

    def score(self, x, t):
        """The exact grad_x log p_t(x) = sum_k p(k | x) * (-(x - a mu_k) / sigma_k^2)."""
        responsibilities = self.posterior(x, t)
        mean, std = self._components(x, t)
        component_scores = -(x[:, None] - mean) / std.square()
        return torch.einsum("bk,bkchw->bchw", responsibilities, component_scores)

    def __call__(self, x, t):
        """The ideal network output: E[x0 | x_t] (``x0``) or E[sigma eps | x_t] = x_t - a E[x0 | x_t]."""
        x0_mean = self.posterior_mean(x, t)
        if self.parameterization == "x0":
            return x0_mean
        return x - self.sde.signal_coef(time_like(t, x)) * x0_mean

    def sample_marginal(self, t, n, generator=None, return_components=False):
        """n exact samples of p_t (and, on request, the component each came from)."""
        device = self.images.device
        components = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        mu = self.images[components]
        t = time_like(t, mu)
        std = self.sde.std_from_edges(self._edges[components], t)
        eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=device)
        samples = self.sde.signal_coef(t) * mu + std * eps
        return (samples, components) if return_components else samples


def rectangle_images(k, size=8, seed=0, dtype=torch.float32):
    """K distinct images in [-1, 1] made of random rectangles on a -1 background: strong edges
    and flat interiors, the data the oracle tests and the sampler comparison use."""
    generator = torch.Generator().manual_seed(seed)
    images = -torch.ones(k, 1, size, size, dtype=dtype)
    for image in images:
        for _ in range(3):
            top, left = torch.randint(0, size - 2, (2,), generator=generator).tolist()
            height, width = torch.randint(2, size // 2 + 1, (2,), generator=generator).tolist()
            image[:, top : top + height, left : left + width] = 2 * torch.rand((), generator=generator, dtype=dtype) - 1
    return images


class GaussianOracle:
    """The exact model for Gaussian data N(mean, std^2 I) under an isotropic process (tau =
    isotropic): x_t ~ N(a mean, a^2 std^2 + b^2) per pixel, so E[x0 | x_t] is linear in x_t.
    It anchors the likelihood code to closed forms (SPEC section 6)."""

    def __init__(self, mean, std, sde, parameterization="scaled_eps"):
        if sde.config.tau != "isotropic":
            raise ValueError("GaussianOracle is exact only for diffusion.tau='isotropic'")
        self.mean, self.std, self.sde, self.parameterization = float(mean), float(std), sde, parameterization

    def marginal_std(self, t):
        """sqrt(a^2 std^2 + b^2) at t, a tensor like t."""
        return torch.sqrt(self.sde.signal_coef(t) ** 2 * self.std**2 + self.sde.noise_coef(t) ** 2)

    def posterior_mean(self, x, t):
        t = time_like(t, x)
        a = self.sde.signal_coef(t)
        gain = a * self.std**2 / self.marginal_std(t) ** 2
        return self.mean + gain * (x - a * self.mean)

    def __call__(self, x, t):
        x0_mean = self.posterior_mean(x, t)
        if self.parameterization == "x0":
            return x0_mean
        return x - self.sde.signal_coef(time_like(t, x)) * x0_mean
