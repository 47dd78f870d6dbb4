"""Numerical checks of the claims in B_baselines.md. Exits non-zero if any fails.

    python paper_appendix/check_B.py
"""
import sys

import torch
from _report import report  # paper_appendix/ is on sys.path when run as a script

from sde_edge.config import default_diffusion
from sde_edge.data.datasets import gaussian_blur
from sde_edge.processes.bases import DCT, DFT
from sde_edge.processes.spectral import BlueNoiseSDE, BlurringSDE

torch.set_default_dtype(torch.float64)
LIKE = torch.zeros(1, 1, 16, 16)
TIMES = torch.linspace(0.02, 0.98, 49).reshape(-1, 1, 1, 1)


def _derivative(fn, t, h=1e-6):
    return (fn(t + h) - fn(t - h)) / (2 * h)


def claim_1_bases_are_orthonormal():
    worst = 0.0
    for basis in (DCT, DFT):
        for n in (7, 8, 16):
            eye = torch.eye(n)
            matrix = basis._matrix(n, eye)
            worst = max(worst, float((matrix @ matrix.T - eye).abs().max()))
    return worst, 1e-12


def claim_2_blur_drift(sde):
    """f_k = d log alpha_k / dt against central differences of log alpha."""
    analytic = sde.drift_coef(TIMES, LIKE)
    numeric = _derivative(lambda t: torch.log(sde.alpha(t, LIKE)), TIMES)
    return float(((analytic - numeric).abs() / numeric.abs().clamp_min(1e-3)).max()), 1e-6


def claim_3_blur_diffusion(sde):
    """G_k^2 = d s^2/dt - 2 f s^2 (central differences), and G_k^2 >= beta."""
    s_sq = lambda t: sde.noise_std(None, t, LIKE) ** 2  # noqa: E731
    numeric = _derivative(s_sq, TIMES) - 2 * sde.drift_coef(TIMES, LIKE) * s_sq(TIMES)
    analytic = sde.diffusion_sq(None, TIMES, LIKE)
    error = float(((analytic - numeric).abs() / numeric.abs()).max())
    below_beta = float((sde.schedule.beta(TIMES) - analytic).clamp_min(0).max())
    return max(error, below_beta), 1e-6


def claim_4_blur_mean_is_a_gaussian_blur():
    """Where the blur is resolved by the pixel grid (sigma_B >= 2 px; a sampled kernel of a smaller
    Gaussian is not the continuous heat kernel), away from the borders."""
    sde = BlurringSDE(default_diffusion(process="blur", blur_sigma_max=4.0, blur_min_scale=1e-12))
    x0 = torch.rand(1, 1, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    worst = 0.0
    for t in (0.5, 0.7, 0.9):
        t_tensor = torch.tensor(t)
        mean = sde.from_basis(sde.marginal_prob(x0, t)[0]) / sde.schedule.signal(t_tensor)
        sigma = float(4.0 * torch.sin(torch.tensor(torch.pi * t / 2)) ** 2)
        blurred = gaussian_blur(x0, sigma)
        inner = slice(16, -16)  # away from the borders, where Neumann and reflection differ slightly
        worst = max(worst, float((mean - blurred)[..., inner, inner].abs().max()))
    return worst, 5e-3


def claim_5_bluenoise_diffusion(sde):
    s_sq = lambda t: sde.noise_std(None, t, LIKE) ** 2  # noqa: E731
    numeric = _derivative(s_sq, TIMES) - 2 * sde.drift_coef(TIMES, LIKE) * s_sq(TIMES)
    analytic = sde.diffusion_sq(None, TIMES, LIKE)
    away = ((TIMES - sde.config.t_phi).abs() > 1e-3).expand_as(analytic)  # the ramp's kink
    error = float(((analytic - numeric).abs() / numeric.abs())[away].max())
    negative = float((-analytic).clamp_min(0).max())
    return max(error, negative), 1e-5


def claim_6_bluenoise_is_stationary_and_blue():
    sde = BlueNoiseSDE(default_diffusion(process="bluenoise", basis="dft", tau="linear_ramp"))
    n = 12
    like = torch.zeros(1, 1, n, n)
    variance = sde.noise_std(None, torch.tensor(0.2).reshape(1, 1, 1, 1), like).square().expand(1, 1, n, n)[0, 0]
    basis = sde.basis._matrix(n, like)
    # pixel covariance: sum over coefficients of U_h[k, i] U_w[l, j] ... built as a (n^2, n^2) matrix
    full = torch.kron(basis, basis)  # y = full @ x.flatten()
    covariance = full.T @ torch.diag(variance.flatten()) @ full
    worst = 0.0
    for di in range(n):
        for dj in range(n):
            values = [covariance[(i * n + j), ((i + di) % n) * n + (j + dj) % n] for i in range(n) for j in range(n)]
            values = torch.stack(values)
            worst = max(worst, float(values.max() - values.min()))
    spectrum = sde.blue_spectrum(like)
    blue = float(spectrum[0, 0]) < 0.5 and float(spectrum.max()) > 1.0
    return worst if blue else float("inf"), 1e-12


def claim_7_bluenoise_keeps_the_noise_level(sde):
    variance = sde.noise_std(None, TIMES, LIKE) ** 2
    mean_pixel_variance = sde.basis.pixel_variance(variance.expand(len(TIMES), 1, 16, 16)).mean(dim=(1, 2, 3))
    return float((mean_pixel_variance / sde.schedule.noise(TIMES.flatten()) ** 2 - 1).abs().max()), 1e-12


def main():
    blur = BlurringSDE(default_diffusion(process="blur", blur_sigma_max=10.0))
    blue = BlueNoiseSDE(default_diffusion(process="bluenoise", tau="linear_ramp"))
    results = [
        ("1 DCT and DFT bases are orthonormal", *claim_1_bases_are_orthonormal()),
        ("2 blurring drift f_k = d log alpha_k / dt", *claim_2_blur_drift(blur)),
        ("3 blurring G_k^2 = d s^2/dt - 2 f s^2 >= beta", *claim_3_blur_diffusion(blur)),
        ("4 blurring's mean is a Gaussian blur of std sigma_B(t)", *claim_4_blur_mean_is_a_gaussian_blur()),
        ("5 blue noise G_k^2 formula and G_k^2 >= 0", *claim_5_bluenoise_diffusion(blue)),
        ("6 blue noise is stationary (circulant covariance) and blue", *claim_6_bluenoise_is_stationary_and_blue()),
        ("7 blue noise keeps the mean pixel variance b(t)^2", *claim_7_bluenoise_keeps_the_noise_level(blue)),
    ]
    return report(results)


if __name__ == "__main__":
    sys.exit(main())
