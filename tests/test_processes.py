"""The baselines as processes diagonal in a frequency basis (paper_appendix/B_baselines.md):
orthonormal bases, Monte-Carlo marginals of the new SDEs, a closed-form likelihood, and the
interface every consumer relies on."""
import math

import numpy as np
import pytest
import torch

from helpers import TINY, PaperSchedule, assert_paths_match_marginal
from sde_edge.config import default_diffusion, load_config
from sde_edge.likelihood import ode_bpd
from sde_edge.oracle import GaussianOracle
from sde_edge.processes.bases import DCT, DFT
from sde_edge.processes.registry import build_sde
from sde_edge.processes.spectral import BlueNoiseSDE, BlurringSDE

PROCESSES = {
    "blur": dict(process="blur", blur_sigma_max=4.0),
    "bluenoise": dict(process="bluenoise", tau="linear_ramp"),
}


@pytest.mark.parametrize("basis", [DCT, DFT], ids=lambda b: b.name)
@pytest.mark.parametrize("shape", [(3, 1, 8, 8), (2, 3, 7, 12)])
def test_bases_are_orthonormal_round_trip_and_parseval(basis, shape):
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    y = basis.forward(x)
    torch.testing.assert_close(basis.inverse(y), x, atol=1e-6, rtol=0)
    torch.testing.assert_close(y.flatten(1).norm(dim=1), x.flatten(1).norm(dim=1), atol=1e-5, rtol=1e-6)
    # batch elements are transformed independently
    torch.testing.assert_close(basis.forward(x[:1]), y[:1], atol=1e-6, rtol=0)


def test_dct_frequencies_and_the_blur_eigenvalues():
    rho = DCT.frequencies(8, 8)
    assert (
        rho[0, 0] == 0 and rho[0, 1] == pytest.approx(1 / 16) and rho[7, 7] == pytest.approx(math.hypot(7 / 16, 7 / 16))
    )
    sde = BlurringSDE(default_diffusion(process="blur"))
    like = torch.zeros(1, 1, 8, 8)
    torch.testing.assert_close(sde._eigenvalues(like)[0, 1], torch.tensor(math.pi**2 / 64), rtol=1e-6, atol=0)


@pytest.mark.parametrize("name", PROCESSES)
def test_euler_maruyama_paths_match_the_closed_form_marginal(name):
    """20k paths of dy = f y dt + G dW from a fixed x0 against mean alpha U^T x0 and std s, per coordinate."""
    x0 = torch.rand(1, 1, 6, 6, generator=torch.Generator().manual_seed(3)) * 2 - 1
    assert_paths_match_marginal(build_sde(default_diffusion(**PROCESSES[name])), x0)


def test_blurring_damps_high_frequencies_and_keeps_the_mean_colour():
    sde = build_sde(default_diffusion(**PROCESSES["blur"]))
    like = torch.zeros(1, 1, 8, 8)
    t = torch.tensor(0.6).reshape(1, 1, 1, 1)
    alpha = sde.alpha(t, like)[0, 0]
    assert alpha[0, 0] == pytest.approx(float(sde.schedule.signal(t)), rel=1e-6)  # the DC coefficient is not blurred
    assert alpha[7, 7] < 0.01 * alpha[0, 0] and (alpha[0, 1:] < alpha[0, :-1]).all()


def test_blue_noise_is_blue_early_and_white_late():
    sde = build_sde(default_diffusion(**PROCESSES["bluenoise"]))
    like = torch.zeros(1, 1, 8, 8)
    early = sde.noise_std(None, torch.tensor(0.05).reshape(1, 1, 1, 1), like)[0, 0]
    late = sde.noise_std(None, torch.tensor(0.8).reshape(1, 1, 1, 1), like)[0, 0]
    assert early[0, 0] < early[7, 7] and late.std() / late.mean() < 1e-6


def test_blue_noise_settings_that_would_make_g_squared_negative_are_refused():
    """A steep switch to white noise at t = 0.5, where the schedule's noise grows slowest: the high
    frequencies' noise would fall (s^2 / a^2 decreasing), so no G exists."""
    sde = BlueNoiseSDE(
        default_diffusion(process="bluenoise", tau="sigmoid", tau_k=200.0, t_phi=0.5, bluenoise_floor=0.01)
    )
    with pytest.raises(ValueError, match="bluenoise"):
        sde.noise_std(None, torch.tensor(0.5).reshape(1, 1, 1, 1), torch.zeros(1, 1, 16, 16))


def _gaussian_flow_bpd(sde, oracle, x):
    """Closed form (math.md, 5.3): per coordinate y_t ~ N(alpha m, r_t^2), r_t^2 = alpha^2 v + s^2, and the flow
    is y_1 = alpha_1 m + (r_1 / r_eps)(y - alpha_eps m): log p(x) = log N(y_1; 0, I) + sum log(r_1 / r_eps)."""
    t_eps = torch.tensor(sde.t_eps, dtype=x.dtype).reshape(1, 1, 1, 1)
    one = torch.tensor(1.0, dtype=x.dtype).reshape(1, 1, 1, 1)
    m = oracle.mean_coordinates(x)
    r0, r1 = oracle.marginal_std(t_eps, x), oracle.marginal_std(one, x)
    y1 = sde.alpha(one, x) * m + r1 / r0 * (sde.to_basis(x) - sde.alpha(t_eps, x) * m)
    log_p = (-0.5 * y1**2 - 0.5 * math.log(2 * math.pi) + torch.log(r1 / r0)).flatten(1).sum(1)
    return -log_p / (x[0].numel() * math.log(2)) + 7


def test_ode_bpd_of_gaussian_data_matches_the_closed_form_under_blurring():
    sde = build_sde(default_diffusion(process="blur", blur_sigma_max=3.0))
    oracle = GaussianOracle(0.1, 0.3, sde)
    x = (0.1 + 0.3 * torch.randn(4, 1, 4, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)).clamp(
        -1, 1
    )
    with pytest.warns(UserWarning, match="dequantize=False"):
        result = ode_bpd(oracle, sde, x, trace="exact", dequantize=False, rtol=1e-7, atol=1e-7)
    assert (result.bpd - _gaussian_flow_bpd(sde, oracle, x)).abs().max() < 0.01


def test_the_edge_process_reports_no_basis_change_and_the_baselines_theirs():
    edge, blur = build_sde(default_diffusion()), build_sde(default_diffusion(**PROCESSES["blur"]))
    x = torch.randn(2, 1, 8, 8)
    assert edge.to_basis(x) is x and edge.from_basis(x) is x
    assert not torch.allclose(blur.to_basis(x), x)
    with pytest.raises(ValueError, match="GaussianOracle"):
        GaussianOracle(0.0, 1.0, edge.__class__(default_diffusion(tau="linear_ramp")))


def test_a_process_registered_outside_the_package_is_validated_and_built():
    """A scaled VP process (s = c b(t), so G^2 = c^2 beta) declared here, in the test module alone."""
    from sde_edge.config import default_diffusion, validate_config
    from sde_edge.fields import Field, number
    from sde_edge.processes.edge import SDE
    from sde_edge.processes.registry import PROCESSES, register_process

    @register_process
    class ScaledVP(SDE):
        name = "toy_scaled_vp"
        fields = {"toy_scale": Field(2.0, number(0, low_open=True), "noise std over the VP schedule's")}

        @classmethod
        def noise_depends_on(cls, diffusion):
            return False

        def noise_statistic(self, x0):
            return None

        def alpha(self, t, like):
            return self.schedule.signal(t)

        def noise_std(self, statistic, t, like):
            return self.config.toy_scale * self.schedule.noise(t)

        def drift_coef(self, t, like):
            return -0.5 * self.schedule.beta(t)

        def diffusion_sq(self, statistic, t, like):
            return self.config.toy_scale**2 * self.schedule.beta(t)

    try:
        diffusion = default_diffusion(process="toy_scaled_vp")
        assert diffusion.toy_scale == 2.0
        sde = build_sde(diffusion)
        assert isinstance(sde, ScaledVP)
        x0 = torch.zeros(2, 1, 4, 4, dtype=torch.float64)
        _, std = sde.marginal_prob(x0, torch.full((2,), 0.5, dtype=torch.float64))
        b = np.sqrt(-np.expm1(PaperSchedule().log_abar(0.5)))
        assert torch.allclose(std, torch.full_like(std, 2.0 * b))
        with pytest.raises(ValueError, match=r"diffusion\.toy_scale must be a finite number > 0"):
            default_diffusion(process="toy_scaled_vp", toy_scale=-1.0)
        config = load_config(TINY)
        config.diffusion = default_diffusion(process="toy_scaled_vp")
        config.model.parameterization = "eps"  # its noise does not depend on x0
        validate_config(config)
    finally:
        PROCESSES.pop("toy_scaled_vp", None)
