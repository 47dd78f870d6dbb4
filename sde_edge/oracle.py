"""Exact models for tests: data = K fixed images, or Gaussian data (paper_appendix/math.md, section 7).

For data = K images mu_k with weights w_k, every marginal of a process diagonal in a basis U
is a mixture of diagonal Gaussians in the coordinates y = U^T x,

    p_t(y) = sum_k w_k N(y; alpha(t) U^T mu_k, diag s(mu_k, t)^2),

so the score, E[x0 | x_t] and the network output of each parameterisation are known exactly
(log-sum-exp over k). The oracle plugs into every sampler and the likelihood code like a
trained network. Since U is orthonormal, densities of y and of x = U y are equal.
"""
import math

import torch

from sde_edge.score import PARAMETERIZATIONS
from sde_edge.tensors import time_like


def _network_output(sde, parameterization, x, t, x0_mean):
    """What an ideal network outputs at (x, t): E[x0 | x_t] (``x0``), n = x_t - U alpha U^T E[x0 | x_t]
    (``scaled_eps``) or U (n_y / s(t)) (``eps``, for noise that does not depend on x0)."""
    if parameterization == "x0":
        return x0_mean
    t = time_like(t, x)
    y = sde.to_basis(x)
    noise = y - sde.alpha(t, x) * sde.to_basis(x0_mean)
    if parameterization == "eps":
        noise = noise / sde.noise_std(None, t, x)
    return sde.from_basis(noise)


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
        self._coordinates = sde.to_basis(images)  # U^T mu_k, (K, C, H, W)
        self._statistics = sde.noise_statistic(images)  # fixed, so computed once

    @property
    def weights(self):
        return self.log_weights.exp()

    def _std(self, t, components=None):
        """s(mu_k, t) for every component (t of shape (B, 1, 1, 1, 1)) or for chosen ones."""
        statistic = self._statistics
        if components is not None:
            return self.sde.noise_std(None if statistic is None else statistic[components], t, self.images)
        return self.sde.noise_std(None if statistic is None else statistic[None], t, self.images)

    def _components(self, y, t):
        """Per-sample component means alpha U^T mu_k and stds s(mu_k, t): (B, K, C, H, W)."""
        t = time_like(t, y)[:, None]  # (B, 1, 1, 1, 1)
        mean = self.sde.alpha(t, self.images) * self._coordinates[None]
        return mean, self._std(t).expand(y.shape[0], *self.images.shape)

    def _log_densities(self, x, t):
        """log w_k + log N(y; alpha U^T mu_k, s_k^2) for each sample and component, (B, K)."""
        mean, std = self._components(self.sde.to_basis(x), t)
        z = (self.sde.to_basis(x)[:, None] - mean) / std
        dims = self.images[0].numel()
        log_normal = (
            -0.5 * z.square().flatten(2).sum(-1) - std.log().flatten(2).sum(-1) - 0.5 * dims * math.log(2 * math.pi)
        )
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
        """The exact score of the coordinates y = U^T x: sum_k p(k | y) (-(y - alpha U^T mu_k) / s_k^2)."""
        y = self.sde.to_basis(x)
        responsibilities = self.posterior(x, t)
        mean, std = self._components(y, t)
        component_scores = -(y[:, None] - mean) / std.square()
        return torch.einsum("bk,bkchw->bchw", responsibilities, component_scores)

    def __call__(self, x, t):
        """The ideal network output (see ``_network_output``)."""
        return _network_output(self.sde, self.parameterization, x, t, self.posterior_mean(x, t))

    def sample_marginal(self, t, n, generator=None, return_components=False):
        """n exact samples of p_t as pixel images (and, on request, the component each came from)."""
        components = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        coordinates = self._coordinates[components]
        t = time_like(t, coordinates)
        std = self._std(t, components)
        eps = torch.randn(coordinates.shape, generator=generator, dtype=coordinates.dtype, device=coordinates.device)
        samples = self.sde.from_basis(self.sde.alpha(t, coordinates) * coordinates + std * eps)
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
    """The exact model for Gaussian data N(mean, std^2 I) under a process whose noise ignores x0
    (DDPM, blurring, blue noise): in the basis, y_t ~ N(alpha m_k, alpha^2 std^2 + s^2) per
    coordinate (m_k = U^T of the constant image), so E[x0 | x_t] is linear in x_t. It anchors
    the likelihood code to closed forms (paper_appendix/math.md, section 6)."""

    def __init__(self, mean, std, sde, parameterization="scaled_eps"):
        if sde.noise_statistic(torch.zeros(1, 1, 2, 2)) is not None:
            raise ValueError("GaussianOracle is exact only for processes whose noise ignores x0 "
                             "(tau='isotropic', blur, bluenoise)")
        self.mean, self.std, self.sde, self.parameterization = float(mean), float(std), sde, parameterization

    def mean_coordinates(self, like):
        """U^T of the constant image ``mean``, shaped like ``like``."""
        return self.sde.to_basis(torch.full_like(like, self.mean))

    def marginal_std(self, t, like):
        """sqrt(alpha^2 std^2 + s^2) per coordinate at t (B, 1, 1, 1)."""
        return torch.sqrt(self.sde.alpha(t, like) ** 2 * self.std**2 + self.sde.noise_std(None, t, like) ** 2)

    def posterior_mean(self, x, t):
        t = time_like(t, x)
        y, alpha = self.sde.to_basis(x), self.sde.alpha(t, x)
        m = self.mean_coordinates(x)
        gain = alpha * self.std**2 / self.marginal_std(t, x) ** 2
        return self.sde.from_basis(m + gain * (y - alpha * m))

    def __call__(self, x, t):
        return _network_output(self.sde, self.parameterization, x, t, self.posterior_mean(x, t))
