"""Every sampler against the mixture oracle (SPEC section 7), plus determinism, NFE, grids."""
import numpy as np
import pytest
import torch
from scipy.stats import chisquare

from conftest import edge_rich_images
from sde_edge.oracle import MixtureOracle
from sde_edge.sampling import SAMPLERS, sample
from sde_edge.sampling.grids import time_grid

WEIGHTS = (0.5, 0.3, 0.2)
# (name, steps, options): the budgets of the issue.
BUDGETS = [
    ("ddpm", 200, {}),
    ("ddim", 100, {}),
    ("euler_maruyama", 500, {}),
    ("torchsde", 500, {"method": "euler"}),
    ("torchsde", 500, {"method": "srk"}),
    ("pc", 250, {"n_corrector": 1}),
    ("ode", 1, {}),
    ("heun", 100, {}),
]


def _id(budget):
    name, steps, options = budget
    return "-".join([name, str(steps), *map(str, options.values())])


@pytest.fixture(scope="module", params=["isotropic", "linear_ramp"])
def setup(request):
    from sde_edge.config import default_diffusion
    from sde_edge.sde import EdgePreservingSDE

    sde = EdgePreservingSDE(default_diffusion(tau=request.param))
    images = edge_rich_images(3, dtype=torch.float32)
    return sde, images, MixtureOracle(images, WEIGHTS, sde)


def _mode_statistics(samples, images):
    rmse = (samples[:, None] - images[None]).square().flatten(2).mean(-1).sqrt()
    nearest_rmse, nearest = rmse.min(1)
    near = nearest_rmse < 0.05
    counts = torch.bincount(nearest[near], minlength=len(images)).double().numpy()
    p_value = chisquare(counts, counts.sum() * np.array(WEIGHTS)).pvalue
    return near.double().mean().item(), p_value


@pytest.mark.slow
@pytest.mark.parametrize("budget", BUDGETS, ids=_id)
def test_sampler_lands_on_the_modes_with_the_right_frequencies(setup, budget):
    sde, images, oracle = setup
    name, steps, options = budget
    generator = torch.Generator().manual_seed(0)
    x = oracle.sample_marginal(1.0, 1000, generator=generator)
    result = sample(name, oracle, sde, x.shape, steps=steps, generator=generator, x_init=x, **options)
    near, p_value = _mode_statistics(result.samples, images)
    assert near >= 0.99, f"only {near:.3f} of the samples are within RMSE 0.05 of a mode"
    assert p_value > 1e-3, f"mode frequencies off: chi-square p = {p_value:.2e}"


def test_registry_names():
    assert set(SAMPLERS) == {"ddpm", "ddim", "euler_maruyama", "torchsde", "pc", "ode", "heun"}


SMALL = [("ddpm", {}), ("ddim", {}), ("ddim", {"eta": 0.5}), ("euler_maruyama", {}), ("pc", {"n_corrector": 2}),
         ("torchsde", {"method": "euler"}), ("torchsde", {"method": "milstein"}), ("torchsde", {"method": "srk"}),
         ("ode", {}), ("heun", {})]


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
        result = sample(name, counter, sde, (8, 1, 8, 8), steps=12, generator=torch.Generator().manual_seed(5), **options)
        assert result.nfe == counter.calls
        runs.append(result.samples)
    assert torch.equal(runs[0], runs[1])
    other = sample(name, oracle, sde, (8, 1, 8, 8), steps=12, generator=torch.Generator().manual_seed(6), **options).samples
    assert not torch.equal(runs[0], other)


def test_nfe_per_step_is_as_documented(make_sde):
    sde = make_sde(tau="linear_ramp")
    oracle = MixtureOracle(edge_rich_images(2, dtype=torch.float32), (0.5, 0.5), sde)
    expected = {"ddpm": 10, "ddim": 10, "euler_maruyama": 11, "heun": 21, "pc": 10 * 3 + 1}
    for name, nfe in expected.items():
        options = {"n_corrector": 2} if name == "pc" else {}
        assert sample(name, oracle, sde, (2, 1, 8, 8), steps=10, **options).nfe == nfe, name


def test_ddim_with_eta_one_is_ancestral_ddpm(make_sde):
    """Two algebraically different update formulas: equal step by step under the same noise."""
    sde = make_sde(tau="linear_ramp")
    oracle = MixtureOracle(edge_rich_images(3, dtype=torch.float64), WEIGHTS, sde)
    x = oracle.sample_marginal(1.0, 64, generator=torch.Generator().manual_seed(0))
    runs = [sample(name, oracle, sde, x.shape, steps=30, x_init=x, generator=torch.Generator().manual_seed(1),
                   return_trajectory=True, **options).trajectory for name, options in [("ddpm", {}), ("ddim", {"eta": 1.0})]]
    for (t_a, x_a), (t_b, x_b) in zip(*runs):
        assert t_a == t_b
        torch.testing.assert_close(x_a, x_b, atol=1e-8, rtol=1e-6)


def test_continuous_samplers_refuse_linear_tau(make_sde):
    sde = make_sde(tau="linear")
    oracle = MixtureOracle(edge_rich_images(2, dtype=torch.float32), (0.5, 0.5), sde)
    for name in ("euler_maruyama", "torchsde", "pc", "ode", "heun"):
        with pytest.raises(ValueError, match="linear_ramp") as error:
            sample(name, oracle, sde, (2, 1, 8, 8), steps=4)
        assert "ddpm" in str(error.value)
    assert sample("ddpm", oracle, sde, (2, 1, 8, 8), steps=4).samples.shape == (2, 1, 8, 8)


def test_start_from_a_given_x_at_t_start(make_sde):
    """The SDEdit hook: start at the true marginal of t = 0.4 and still land on the modes."""
    sde = make_sde(tau="linear_ramp")
    images = edge_rich_images(3, dtype=torch.float32)
    oracle = MixtureOracle(images, WEIGHTS, sde)
    x, k = oracle.sample_marginal(0.4, 300, generator=torch.Generator().manual_seed(2), return_components=True)
    trajectory = []
    result = sample("euler_maruyama", oracle, sde, x.shape, steps=100, x_init=x, t_start=0.4,
                    callback=lambda info: trajectory.append(float(info["t"])))
    assert trajectory[0] == pytest.approx(0.4) and trajectory[-1] < 0.01
    near, _ = _mode_statistics(result.samples, images)
    assert near >= 0.99
    # started this late, almost every sample keeps its component
    landed = (result.samples[:, None] - images[None]).square().flatten(2).mean(-1).argmin(1)
    assert (landed == k).double().mean() > 0.95


@pytest.mark.parametrize("grid", ["uniform", "power", "logsnr"])
def test_time_grids_run_from_t_start_to_t_end(make_sde, grid):
    sde = make_sde()
    ts = time_grid(grid, 20, 1.0, 1e-3, sde=sde, dtype=torch.float64)
    assert len(ts) == 21 and ts[0] == 1.0 and ts[-1] == pytest.approx(1e-3)
    assert bool((ts[1:] < ts[:-1]).all())


def test_logsnr_grid_is_uniform_in_log_snr(make_sde):
    sde = make_sde()
    ts = time_grid("logsnr", 10, 0.9, 0.01, sde=sde, dtype=torch.float64).numpy()
    n, bmin, bmax = 500, 1e-4, 2e-2
    log_abar = -(n * bmin * ts + 0.5 * n * (bmax - bmin) * ts**2)
    logsnr = log_abar - np.log(-np.expm1(log_abar))
    np.testing.assert_allclose(np.diff(logsnr), np.full(10, (logsnr[-1] - logsnr[0]) / 10), rtol=1e-9)


def test_torchsde_refuses_a_non_uniform_grid(make_sde):
    sde = make_sde(tau="linear_ramp")
    oracle = MixtureOracle(edge_rich_images(2, dtype=torch.float32), (0.5, 0.5), sde)
    with pytest.raises(ValueError, match="uniform"):
        sample("torchsde", oracle, sde, (2, 1, 8, 8), steps=5, grid="power")


def test_unknown_sampler_lists_the_names(make_sde):
    with pytest.raises(ValueError, match="euler_maruyama"):
        sample("dpm_solver", None, make_sde(), (1, 1, 4, 4), steps=3)
