"""Step noise from one Brownian path (sde_edge/sampling/brownian.py) and grids fitted for samplers
that draw noise: the increments are standard normal, independent and additive; a sampler driven by
the path keeps its law (the mixture oracle's weights) and converges strongly to its fine-grid
solution on the same path (which independent noise cannot); a grid fitted for dpmpp_2m_sde beats the
generic grids on held-out paths; samplers whose noise is not a time step's are refused."""
import math

import pytest
import torch

from sde_edge.config import default_diffusion
from sde_edge.oracle import MixtureOracle, rectangle_images
from sde_edge.processes import build_sde
from sde_edge.sampling import sample
from sde_edge.sampling.brownian import BrownianNoise, snr_clock
from sde_edge.sampling.fitted import FittedGrid, calibration_states, fit_grid

WEIGHTS = (0.5, 0.3, 0.2)


def _oracle(tau="linear_ramp"):
    sde = build_sde(default_diffusion(tau=tau))
    return MixtureOracle(rectangle_images(3), WEIGHTS, sde), sde


def test_increments_are_standard_normal_independent_and_add_up():
    shape = (4096, 1, 4, 4)
    y, n = torch.zeros(shape), math.prod(shape)
    for clock in (None, snr_clock(build_sde(default_diffusion(tau="linear_ramp")))):
        noise = BrownianNoise(shape, seed=3, clock=clock)
        length = noise.clock(0.3) - noise.clock(0.6)
        z = noise.step_noise(y, 0.6, 0.3)  # a reverse step: t > s; then split by the bridge, unevenly
        first, second = noise.step_noise(y, 0.6, 0.5), noise.step_noise(y, 0.5, 0.3)
        later = noise.step_noise(y, 0.9, 0.6)  # beyond the points so far
        for w in (z, first, second, later):
            assert abs(float(w.mean())) < 5 / math.sqrt(n) and abs(float(w.var()) - 1) < 5 * math.sqrt(2 / n)
        for u, v in ((first, second), (z, later)):  # disjoint steps are independent
            assert abs(float((u * v).mean())) < 5 / math.sqrt(n)
        parts = first * math.sqrt(abs(noise.clock(0.5) - noise.clock(0.6))) + second * math.sqrt(
            abs(noise.clock(0.3) - noise.clock(0.5)))
        torch.testing.assert_close(z * math.sqrt(abs(length)), parts, atol=1e-4 * math.sqrt(abs(length)), rtol=0)
    assert not noise.step_noise(y, 0.5, 0.5).any()  # a step of no length (two grid times equal in float32)
    again = BrownianNoise(shape, seed=3, clock=clock)
    torch.testing.assert_close(again.step_noise(y, 0.6, 0.3), z)  # the same seed and queries, the same path
    assert not torch.allclose(BrownianNoise(shape, seed=4, clock=clock).step_noise(y, 0.6, 0.3), z)


def test_a_driven_sampler_keeps_its_law():
    oracle, sde = _oracle()
    shape = (2000, 1, 8, 8)
    x_init = calibration_states(sde, shape, 0, "test/prior")
    samples = sample("dpmpp_2m_sde", oracle, sde, shape, steps=100, x_init=x_init,
                     generator=BrownianNoise(shape, 1, clock=snr_clock(sde))).samples
    nearest = torch.cdist(samples.flatten(1), rectangle_images(3).flatten(1)).argmin(dim=1)
    for k, weight in enumerate(WEIGHTS):  # the share nearest each mixture image is its weight
        share = float((nearest == k).double().mean())
        assert abs(share - weight) < 4 * math.sqrt(weight * (1 - weight) / shape[0]), (k, share)


def test_a_driven_sampler_converges_strongly_to_its_fine_solution_on_the_path():
    oracle, sde = _oracle()
    shape = (256, 1, 8, 8)
    x_init = calibration_states(sde, shape, 0, "test/prior")

    def run(steps, noise):
        return sample("dpmpp_2m_sde", oracle, sde, shape, steps=steps, x_init=x_init, generator=noise).samples

    def rmse(a, b):
        return float((a - b).pow(2).mean().sqrt())

    path = BrownianNoise(shape, 1, clock=snr_clock(sde))  # one object: every grid reads the same path
    fine = run(1000, path)
    errors = {steps: rmse(run(steps, path), fine) for steps in (25, 200)}
    independent = rmse(run(200, torch.Generator().manual_seed(1)), fine)
    assert errors[200] < 0.6 * errors[25] and errors[200] < 0.1 * independent, (errors, independent)


def _coupled_rmse(oracle, sde, x_init, grid, steps, reference, path):
    result = sample("dpmpp_2m_sde", oracle, sde, tuple(x_init.shape), steps=steps, x_init=x_init, grid=grid,
                    generator=path)
    return float((result.samples - reference).double().pow(2).mean().sqrt())


def test_a_grid_fitted_for_dpmpp_2m_sde_beats_the_generic_grids_on_held_out_paths():
    oracle, sde = _oracle()
    shape = (512, 1, 8, 8)
    calibration = calibration_states(sde, shape, 0, "test/calibration")
    held_out = calibration_states(sde, shape, 0, "test/held-out")
    times, report = fit_grid(oracle, sde, calibration, sampler="dpmpp_2m_sde", steps=6, reference_steps=500)
    assert report["noise"] == "one Brownian path per draw" and len(times) == 7
    assert bool((torch.tensor(times, dtype=torch.float32).diff() < 0).all())  # no step of no length in float32
    # measured here on held-out draws and a path of their own (seed 7), against 1,000 steps on it
    path = BrownianNoise(shape, 7, clock=snr_clock(sde))
    reference = sample("dpmpp_2m_sde", oracle, sde, shape, steps=1000, x_init=held_out, generator=path).samples
    fitted = _coupled_rmse(oracle, sde, held_out, FittedGrid(times, "dpmpp_2m_sde", 6), 6, reference, path)
    for name in ("uniform", "logsnr", "edm"):
        generic = _coupled_rmse(oracle, sde, held_out, name, 6, reference, path)
        assert fitted < generic, (name, fitted, generic, times)


def test_noise_that_is_not_a_time_step_is_refused_in_one_line():
    oracle, sde = _oracle()
    x = calibration_states(sde, (16, 1, 8, 8), 0, "test")
    with pytest.raises(ValueError, match="pc .*cannot be driven by a BrownianNoise"):
        fit_grid(oracle, sde, x, sampler="pc", steps=4, reference_steps=20, n_corrector=1)
    with pytest.raises(ValueError, match="pass the prior draws as x_init"):
        sample("ddpm", oracle, sde, (16, 1, 8, 8), steps=4, generator=BrownianNoise((16, 1, 8, 8), 0))
    with pytest.raises(ValueError, match="torchsde sampler draws its own Brownian path"):
        sample("torchsde", oracle, sde, (16, 1, 8, 8), steps=4, x_init=x, generator=BrownianNoise(x.shape, 0))
    with pytest.raises(ValueError, match=r"for states \(16, 1, 8, 8\), this step's are \(8, 1, 8, 8\)"):
        BrownianNoise(x.shape, 0).step_noise(x[:8], 0.5, 0.4)
