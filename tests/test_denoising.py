"""The per-t denoising error of the study `latent` against closed forms."""
import math

import torch

from sde_edge.experiments.denoising import denoising_table, x0_errors


class NullModel(torch.nn.Module):
    """Predicts no noise at all (scaled_eps = 0): x0_hat = x_t / a(t)."""

    parameterization = "scaled_eps"

    def forward(self, x, t):
        return torch.zeros_like(x)


def _abar(t, n=500, beta_min=1e-4, beta_max=2e-2):
    """The paper schedule's abar(t) (paper_appendix/math.md, section 2), written out here."""
    return math.exp(-(n * beta_min * t + n * (beta_max - beta_min) * t * t / 2))


def test_the_null_models_error_is_the_noise_to_signal_ratio(make_sde):
    """x0_hat - x0 = b eps / a for a model that predicts no noise: the error is (b / a)^2 mean(eps^2)
    for the isotropic process, and the edge process (tau linear) has the same error past t_phi."""
    x0 = torch.rand(8, 3, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1
    times = (0.1, 0.3, 0.6, 0.9)
    iso, edge = make_sde(tau="isotropic"), make_sde(tau="linear", t_phi=0.5)
    errors = x0_errors({"iso": (NullModel(), iso), "edge": (NullModel(), edge)}, x0, times, seed=3)
    eps2 = torch.randn(x0.shape, generator=torch.Generator().manual_seed(3)).square().mean().item()
    for i, t in enumerate(times):
        abar = _abar(t)
        assert math.isclose(errors["iso"][i], (1 - abar) / abar * eps2, rel_tol=1e-4), t
        if t > 0.5:
            assert math.isclose(errors["edge"][i], errors["iso"][i], rel_tol=1e-4), t
        else:  # edges keep less noise than isotropic b(t) before t_phi
            assert errors["edge"][i] < errors["iso"][i], t
    table = denoising_table({"times": list(times), "errors": errors}, reference="iso")
    assert table[2].startswith("| 0.1 | ") and "x)" in table[2] and len(table) == 2 + len(times)
