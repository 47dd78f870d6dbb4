"""Every sampler against the mixture oracle (paper_appendix/math.md, section 7), plus determinism, NFE,
the callback contract, options and grids (how the samplers relate to each other:
test_sampler_relations.py)."""
import math

import numpy as np
import pytest
import torch

from helpers import edge_rich_images
from sde_edge.experiments.sampler_comparison import mode_statistics
from sde_edge.oracle import MixtureOracle
from sde_edge.sampling import SAMPLERS, sample
from sde_edge.sampling.grids import GRIDS, time_grid

WEIGHTS = (0.5, 0.3, 0.2)
# (name, steps, options, grid): the budgets at which every sampler must land on the modes.
BUDGETS = [
    ("ddpm", 200, {}, "uniform"),
    ("ddim", 100, {}, "uniform"),
    ("dpmpp_2m", 10, {}, "uniform"),
    ("dpmpp_2m", 10, {}, "logsnr"),
    ("dpmpp_2m_sde", 20, {"eta": 1.0}, "uniform"),
    ("dpmpp_3m", 10, {}, "uniform"),
    ("euler_maruyama", 500, {}, "uniform"),
    ("torchsde", 500, {"method": "euler"}, "uniform"),
    ("torchsde", 100, {"method": "srk"}, "uniform"),  # strong order 1.5, 20 NFE a step: 100 steps pass (p >= 0.5)
    ("pc", 250, {"n_corrector": 1}, "uniform"),
    ("ode", 1, {}, "uniform"),
    ("heun", 100, {}, "uniform"),
    ("edm", 10, {}, "edm"),
    ("edm", 50, {"s_churn": 5.0}, "edm"),
]


def _id(budget):
    name, steps, options, grid = budget
    return "-".join([name, str(steps), grid, *map(str, options.values())])


PROCESSES = {
    "isotropic": dict(tau="isotropic"),
    "linear_ramp": dict(tau="linear_ramp"),
    "linear": dict(tau="linear"),
    "blur": dict(process="blur", blur_sigma_max=4.0),
    "bluenoise": dict(process="bluenoise", tau="linear_ramp"),
}


@pytest.fixture(scope="module", params=list(PROCESSES))
def setup(request):
    from sde_edge.config import default_diffusion
    from sde_edge.processes.registry import build_sde

    sde = build_sde(default_diffusion(**PROCESSES[request.param]))
    images = edge_rich_images(3, dtype=torch.float32)
    return sde, images, MixtureOracle(images, WEIGHTS, sde)


# Measured, not hidden: the log-SNR grid is uniform in the *isotropic* log-SNR, but blurring moves
# each frequency's SNR on its own schedule, so 10 steps there under-weight the third mode
# (0.154-0.163 for 0.2 over seeds 0-2, p 4e-4 to 4e-3); 20 steps (p 0.03-0.23) or the uniform grid
# at 10 (p 0.12-0.37) pass. Strict: the day it passes, this list must shrink.
KNOWN_BIASED = {"blur-dpmpp_2m-10-logsnr": "isotropic log-SNR grid misplaces the steps of the blurring process"}


@pytest.mark.slow
@pytest.mark.parametrize("budget", BUDGETS, ids=_id)
def test_sampler_lands_on_the_modes_with_the_right_frequencies(setup, budget, request):
    if request.node.callspec.id in KNOWN_BIASED:
        request.applymarker(pytest.mark.xfail(strict=True, reason=KNOWN_BIASED[request.node.callspec.id]))
    sde, images, oracle = setup
    name, steps, options, grid = budget
    if SAMPLERS[name].continuous_time and not sde.is_continuous:
        pytest.skip("a continuous-time sampler; tau='linear' has no continuous form (tested below)")
    generator = torch.Generator().manual_seed(0)
    x = oracle.sample_marginal(1.0, 1000, generator=generator)
    result = sample(name, oracle, sde, x.shape, steps=steps, generator=generator, x_init=x, grid=grid, **options)
    near, _, p_value = mode_statistics(result.samples, images, WEIGHTS)
    assert near >= 0.99, f"only {near:.3f} of the samples are within RMSE 0.05 of a mode"
    assert p_value > 1e-3, f"mode frequencies off: chi-square p = {p_value:.2e}"


def test_registry_names():
    assert set(SAMPLERS) == {"ddpm", "ddim", "dpmpp_2m", "dpmpp_2m_sde", "dpmpp_3m", "euler_maruyama", "torchsde", "pc",
                             "ode", "heun", "edm"}


SMALL = [("ddpm", {}), ("ddim", {}), ("ddim", {"eta": 0.5}), ("dpmpp_2m", {}), ("dpmpp_2m_sde", {}),
         ("dpmpp_2m_sde", {"eta": 0.5}), ("dpmpp_3m", {}), ("dpmpp_3m", {"eta": 1.0}), ("euler_maruyama", {}),
         ("pc", {"n_corrector": 2}), ("torchsde", {"method": "euler"}), ("torchsde", {"method": "milstein"}),
         ("torchsde", {"method": "srk"}), ("ode", {}), ("heun", {}), ("edm", {"s_churn": 10.0})]


class _Counter:
    def __init__(self, model):
        self.model, self.parameterization, self.calls = model, model.parameterization, 0

    def __call__(self, x, t):
        self.calls += 1
        return self.model(x, t)


@pytest.mark.parametrize("name,options", SMALL, ids=lambda v: str(v))
def test_same_seed_same_samples_and_exact_nfe(make_sde, name, options):
    sde = make_sde(tau="linear_ramp")
    oracle = MixtureOracle(edge_rich_images(3, dtype=torch.float32), WEIGHTS, sde)
    runs = []
    for _ in range(2):
        counter = _Counter(oracle)
        result = sample(
            name, counter, sde, (8, 1, 8, 8), steps=12, generator=torch.Generator().manual_seed(5), **options
        )
        assert result.nfe == counter.calls
        runs.append(result.samples)
    assert torch.equal(runs[0], runs[1])
    other = sample(
        name, oracle, sde, (8, 1, 8, 8), steps=12, generator=torch.Generator().manual_seed(6), **options
    ).samples
    assert not torch.equal(runs[0], other)


def test_nfe_per_step_is_as_documented(make_sde):
    sde = make_sde(tau="linear_ramp")
    oracle = MixtureOracle(edge_rich_images(2, dtype=torch.float32), (0.5, 0.5), sde)
    expected = {
        "ddpm": 10,
        "ddim": 10,
        "dpmpp_2m": 10,
        "dpmpp_2m_sde": 10,
        "dpmpp_3m": 10,
        "euler_maruyama": 11,
        "heun": 21,
        "edm": 21,
        "pc": 10 * 3 + 1,
    }
    for name, nfe in expected.items():
        options = {"n_corrector": 2} if name == "pc" else {}
        assert sample(name, oracle, sde, (2, 1, 8, 8), steps=10, **options).nfe == nfe, name


@pytest.mark.parametrize("name,options", SMALL, ids=lambda v: str(v))
def test_callback_sees_every_grid_time_in_order_with_the_state_before_the_step(make_sde, name, options):
    """One contract for all: at each grid time t_i (i < K), the state x_{t_i} and x0_hat(x_{t_i}).
    The oracle's exact x0_hat of the reported state identifies that state independently."""
    sde = make_sde(tau="linear_ramp")
    oracle = MixtureOracle(edge_rich_images(3, dtype=torch.float64), WEIGHTS, sde, "x0")
    x = oracle.sample_marginal(1.0, 6, generator=torch.Generator().manual_seed(1))
    seen = []
    result = sample(name, oracle, sde, x.shape, steps=8, x_init=x, generator=torch.Generator().manual_seed(2),
                    callback=seen.append, return_trajectory=True, **options)
    grid = time_grid("uniform", 8, 1.0, sde.t_eps if SAMPLERS[name].continuous_time else 0.0, sde=sde, dtype=x.dtype)
    assert [info["i"] for info in seen] == list(range(8))
    np.testing.assert_allclose([info["t"] for info in seen], grid[:-1].numpy(), rtol=1e-12)
    torch.testing.assert_close(seen[0]["x"], x)  # the first report is the start, before any step
    for info in seen:
        t = torch.full((len(x),), info["t"], dtype=x.dtype)
        if name != "edm":  # edm reports x0_hat at its churned point; the others at the reported state
            torch.testing.assert_close(info["x0_hat"], oracle.posterior_mean(info["x"], t), atol=1e-6, rtol=1e-6)
    assert [t for t, _ in result.trajectory] == [info["t"] for info in seen]


def test_continuous_samplers_refuse_linear_tau(make_sde):
    sde = make_sde(tau="linear")
    oracle = MixtureOracle(edge_rich_images(2, dtype=torch.float32), (0.5, 0.5), sde)
    for name in ("euler_maruyama", "torchsde", "pc", "ode", "heun", "edm"):
        with pytest.raises(ValueError, match="linear_ramp") as error:
            sample(name, oracle, sde, (2, 1, 8, 8), steps=4)
        assert "ddpm" in str(error.value)
    for name in ("ddpm", "ddim", "dpmpp_2m"):
        assert sample(name, oracle, sde, (2, 1, 8, 8), steps=4).samples.shape == (2, 1, 8, 8)


def test_start_from_a_given_x_at_t_start(make_sde):
    """The SDEdit hook: start at the true marginal of t = 0.4 and still land on the modes."""
    sde = make_sde(tau="linear_ramp")
    images = edge_rich_images(3, dtype=torch.float32)
    oracle = MixtureOracle(images, WEIGHTS, sde)
    x, k = oracle.sample_marginal(0.4, 300, generator=torch.Generator().manual_seed(2), return_components=True)
    trajectory = []
    result = sample("euler_maruyama", oracle, sde, x.shape, steps=100, x_init=x, t_start=0.4,
                    callback=lambda info: trajectory.append(info["t"]))
    assert trajectory[0] == pytest.approx(0.4) and trajectory[-1] < 0.01
    near, _, _ = mode_statistics(result.samples, images, WEIGHTS)
    assert near >= 0.99
    # started this late, almost every sample keeps its component
    landed = (result.samples[:, None] - images[None]).square().flatten(2).mean(-1).argmin(1)
    assert (landed == k).double().mean() > 0.95


@pytest.mark.parametrize("grid", GRIDS)
def test_time_grids_run_from_t_start_to_t_end(make_sde, grid):
    sde = make_sde()
    for t_end in (1e-3, 0.0):
        ts = time_grid(grid, 20, 1.0, t_end, sde=sde, dtype=torch.float64)
        assert len(ts) == 21 and ts[0] == 1.0 and ts[-1] == pytest.approx(t_end)
        assert bool((ts[1:] < ts[:-1]).all())


def test_logsnr_and_edm_grids_are_uniform_in_their_coordinates(make_sde, paper_schedule):
    sde = make_sde()
    ts = time_grid("logsnr", 10, 0.9, 0.01, sde=sde, dtype=torch.float64).numpy()
    logsnr = paper_schedule.log_snr(ts)
    np.testing.assert_allclose(np.diff(logsnr), np.full(10, (logsnr[-1] - logsnr[0]) / 10), rtol=1e-9)
    ts = time_grid("edm", 10, 0.9, 0.01, sde=sde, dtype=torch.float64).numpy()
    sigma_root = np.exp(-0.5 * paper_schedule.log_snr(ts)) ** (1 / 7)  # EDM: uniform in sigma^(1/rho), rho = 7
    np.testing.assert_allclose(np.diff(sigma_root), np.full(10, (sigma_root[-1] - sigma_root[0]) / 10), rtol=1e-8)


def test_torchsde_refuses_a_non_uniform_grid(make_sde):
    sde = make_sde(tau="linear_ramp")
    oracle = MixtureOracle(edge_rich_images(2, dtype=torch.float32), (0.5, 0.5), sde)
    with pytest.raises(ValueError, match="uniform"):
        sample("torchsde", oracle, sde, (2, 1, 8, 8), steps=5, grid="power")


def test_bad_calls_are_clear_errors(make_sde):
    sde = make_sde(tau="linear_ramp")
    oracle = MixtureOracle(edge_rich_images(2, dtype=torch.float32), (0.5, 0.5), sde)
    with pytest.raises(ValueError, match="euler_maruyama"):
        sample("dpm_solver", oracle, sde, (1, 1, 8, 8), steps=3)
    with pytest.raises(ValueError, match="'ddpm' takes no option 'eta'"):
        sample("ddpm", oracle, sde, (1, 1, 8, 8), steps=3, eta=0.5)
    with pytest.raises(ValueError, match="snr"):
        sample("pc", oracle, sde, (1, 1, 8, 8), steps=3, snr=-1.0)
    with pytest.raises(ValueError, match="n_corrector"):
        sample("pc", oracle, sde, (1, 1, 8, 8), steps=3, n_corrector=-1)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        sample("ddpm", oracle, sde, (1, 8, 8), steps=3)
    bad = torch.zeros(1, 1, 8, 8)
    bad[0, 0, 3, 3] = math.nan
    with pytest.raises(ValueError, match="NaN"):
        sample("ddpm", oracle, sde, bad.shape, steps=3, x_init=bad)
    with pytest.raises(ValueError, match="steps"):
        sample("ddpm", oracle, sde, (1, 1, 8, 8), steps=0)


def test_a_model_that_does_not_fit_the_samples_is_named(make_sde):
    from sde_edge.models import ScoreModel, UNet

    sde = make_sde(tau="linear_ramp")
    model = ScoreModel(
        UNet(in_channels=1, image_size=8, nf=8, ch_mult=(1, 2), attn_resolutions=(), num_groups=4), "scaled_eps"
    )
    with pytest.raises(ValueError, match="1-channel"):
        sample("ddpm", model, sde, (2, 3, 8, 8), steps=2)
    with pytest.raises(ValueError, match="float32"):
        sample("ddpm", model, sde, (2, 1, 8, 8), steps=2, x_init=torch.zeros(2, 1, 8, 8, dtype=torch.float64))
