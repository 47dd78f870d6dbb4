"""The paper's own comparison: DDPM's eps parameterisation with the plain DDPM loss, random flips,
and the validation split that tuning reads (never the test split)."""
import sys

import numpy as np
import pytest
import torch

import forked
from helpers import ROOT, TINY, PaperSchedule, edge_rich_images, tensors
from sde_edge.config import default_diffusion, load_config, validate_config
from sde_edge.data.datasets import load_dataset
from sde_edge.experiments.sampler_comparison import mode_statistics
from sde_edge.losses import ScoreMatchingLoss
from sde_edge.models import ScoreModel, UNet
from sde_edge.oracle import MixtureOracle
from sde_edge.processes.registry import build_sde
from sde_edge.sampling import sample
from sde_edge.training.batches import random_flips
from sde_edge.training.trainer import train

WEIGHTS = (0.5, 0.3, 0.2)


def test_eps_with_variance_weighting_is_exactly_the_ddpm_loss():
    """x_t = a x0 + b eps from the paper's schedule written out here; loss = mean over the batch of
    sum over pixels (net(x_t, t) - eps)^2, as in the released vanilla_ddpm_model.forward."""
    sde = build_sde(default_diffusion(tau="isotropic"))
    net = UNet(in_channels=1, image_size=8, nf=8, ch_mult=(1, 2), num_res_blocks=1, attn_resolutions=(),
               dropout=0.0, num_groups=4).double()
    model = ScoreModel(net, "eps")
    x0 = edge_rich_images(5)
    generator = torch.Generator().manual_seed(0)
    t = torch.rand(5, generator=generator, dtype=torch.float64) * 0.98 + 0.01
    eps = torch.randn(x0.shape, generator=generator, dtype=torch.float64)
    log_abar = torch.as_tensor(PaperSchedule().log_abar(t.numpy()))[:, None, None, None]
    x_t = log_abar.mul(0.5).exp() * x0 + (-torch.expm1(log_abar)).sqrt() * eps
    expected = (net(x_t, t) - eps).square().flatten(1).sum(1).mean()
    loss = ScoreMatchingLoss(sde, "variance")(model, x0, t, eps)
    assert torch.allclose(loss, expected, rtol=1e-10, atol=0), (loss.item(), expected.item())


@pytest.mark.parametrize("name,steps", [("ddpm", 200), ("ddim", 100), ("dpmpp_2m", 10)])
def test_the_oracle_answering_in_eps_lands_on_the_modes(name, steps):
    sde = build_sde(default_diffusion(tau="isotropic"))
    images = edge_rich_images(3, dtype=torch.float32)
    oracle = MixtureOracle(images, WEIGHTS, sde, parameterization="eps")
    generator = torch.Generator().manual_seed(0)
    x = oracle.sample_marginal(1.0, 1000, generator=generator)
    result = sample(name, oracle, sde, x.shape, steps=steps, generator=generator, x_init=x)
    near, _, p_value = mode_statistics(result.samples, images, WEIGHTS)
    assert near >= 0.99 and p_value > 1e-3, (near, p_value)


@pytest.mark.parametrize(
    "process", [dict(process="blur", blur_sigma_max=4.0), dict(process="bluenoise", tau="linear_ramp")]
)
def test_eps_reads_the_same_x0_as_scaled_eps_on_the_baselines(process):
    """The oracle's eps and scaled_eps outputs must decode to the same x0_hat (noise free of x0)."""
    from sde_edge.score import Denoiser

    sde = build_sde(default_diffusion(**process))
    images = edge_rich_images(3)
    y = sde.to_basis(
        MixtureOracle(images, WEIGHTS, sde).sample_marginal(0.4, 8, generator=torch.Generator().manual_seed(1))
    )
    t = torch.full((8,), 0.4, dtype=torch.float64)
    a, b = (Denoiser(MixtureOracle(images, WEIGHTS, sde, p), sde)(y, t) for p in ("eps", "scaled_eps"))
    assert torch.allclose(a.x0, b.x0, atol=1e-10) and torch.allclose(a.score, b.score, rtol=1e-8)


def test_eps_on_the_edge_preserving_process_is_refused_at_config_load():
    config = load_config(TINY)
    config.model.parameterization = "eps"
    with pytest.raises(ValueError, match=r"model\.parameterization='eps'.*sigma\(x0, t\)"):
        validate_config(config)
    config.diffusion.tau = "isotropic"
    validate_config(config)


def test_eps_on_the_edge_preserving_process_is_one_line_and_exit_2(tmp_path):
    result = forked.run([sys.executable, "-m", "sde_edge.cli", "train", f"--config={TINY}", f"--workdir={tmp_path}",
                        "--config.model.parameterization=eps"], cwd=ROOT)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "model.parameterization" in lines[0], result.stderr


def test_a_flipped_image_is_the_mirror_of_the_unflipped_one():
    x0 = edge_rich_images(64, dtype=torch.float32)
    flipped = random_flips(x0, seed=3, step=7, rank_slice=slice(None), global_batch=64)
    mirrored = torch.tensor([torch.equal(f, x.flip(-1)) and not torch.equal(f, x) for f, x in zip(flipped, x0)])
    kept = torch.tensor([torch.equal(f, x) for f, x in zip(flipped, x0)])
    assert bool((mirrored | kept).all())
    assert 16 <= int(mirrored.sum()) <= 48  # about half, drawn per image
    again = random_flips(x0, seed=3, step=7, rank_slice=slice(None), global_batch=64)
    assert torch.equal(again, flipped)
    assert not torch.equal(random_flips(x0, seed=3, step=8, rank_slice=slice(None), global_batch=64), flipped)
    halves = [random_flips(x0[s], 3, 7, s, 64) for s in (slice(0, 32), slice(32, 64))]  # two torchrun ranks
    assert torch.equal(torch.cat(halves), flipped)


def test_flipped_training_resumes_bit_identically(tmp_path):
    config = load_config(TINY)
    config.data.random_flip = True
    config.training.n_iters = 10
    straight = train(config, tmp_path / "straight", progress=False)
    config.training.n_iters = 5
    train(config, tmp_path / "resumed", progress=False)
    config.training.n_iters = 10
    resumed = train(config, tmp_path / "resumed", progress=False)
    a, b = _weights(straight), _weights(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    config.data.random_flip = False
    unflipped = _weights(train(config, tmp_path / "unflipped", progress=False))
    assert any(not torch.equal(a[k], unflipped[k]) for k in a)


def _weights(result):
    state = torch.load(result.checkpoint, weights_only=True)
    return {k: v for k, v in tensors(state).items() if k.startswith(("model.", "ema."))}


def test_the_validation_split_is_carved_from_train_and_never_touches_test():
    config = load_config(TINY)
    config.data.validation_fraction = 0.1
    full = load_dataset(load_config(TINY).data, "train").images
    train_part, val, test = (load_dataset(config.data, s).images for s in ("train", "val", "test"))
    assert len(train_part) + len(val) == len(full) and abs(len(val) - 0.1 * len(full)) <= 1
    rows = {tuple(np.round(x.flatten().numpy(), 5)) for x in full}
    assert all(tuple(np.round(x.flatten().numpy(), 5)) in rows for x in val)  # from train ...
    assert torch.equal(torch.cat([train_part, val]).sum(0), full.sum(0))  # ... and all of it, once
    assert not torch.equal(load_dataset(config.data, "test").images, val)
    with pytest.raises(ValueError, match="validation_fraction"):
        load_dataset(load_config(TINY).data, "val")
