"""sde_edge.sdedit: stroke paintings and SDEdit against the mixture oracle (paper_appendix/math.md, section 7)."""
import torch

from helpers import edge_rich_images
from sde_edge.config import default_diffusion
from sde_edge.experiments.sampler_comparison import mode_statistics
from sde_edge.oracle import MixtureOracle
from sde_edge.processes.registry import build_sde
from sde_edge.sdedit import default_strokes, quantize_colours, sdedit, stroke_paintings

WEIGHTS = (0.5, 0.3, 0.2)


def test_a_stroke_painting_has_exactly_k_levels_before_the_blur():
    images = torch.rand(4, 1, 12, 12, generator=torch.Generator().manual_seed(0)) * 2 - 1
    colour = torch.rand(2, 3, 12, 12, generator=torch.Generator().manual_seed(1)) * 2 - 1
    for batch, k in ((images, 3), (images, 5), (colour, 6)):
        quantized = quantize_colours(batch, k)
        for image in quantized:
            assert len(torch.unique(image.reshape(image.shape[0], -1).T, dim=0)) == k
    painted = stroke_paintings(images, 3)
    assert painted.shape == images.shape and painted.min() >= -1 and painted.max() <= 1
    assert default_strokes(1) == 3 and default_strokes(3) == 6


def _oracle():
    sde = build_sde(default_diffusion(tau="linear"))  # the paper's process, with its jump
    images = edge_rich_images(3, dtype=torch.float32)
    return sde, images, MixtureOracle(images, WEIGHTS, sde)


def test_a_small_t0_returns_the_guides_own_mode():
    sde, images, oracle = _oracle()
    guides = images[torch.tensor([0, 1, 2, 2, 1, 0])]
    result = sdedit(oracle, sde, guides, t0=0.05, sampler="ddpm", steps=20, progress=False)
    nearest = (result.samples[:, None] - images[None]).square().flatten(2).mean(-1).argmin(1)
    assert nearest.tolist() == [0, 1, 2, 2, 1, 0]
    assert (result.samples - guides).abs().max() < 0.05


def test_t0_one_forgets_the_guide():
    sde, images, oracle = _oracle()
    guides = images[:1].expand(1000, -1, -1, -1)  # every guide is mode 0
    result = sdedit(oracle, sde, guides, t0=1.0, sampler="ddpm", steps=200, progress=False)
    near, _, p_value = mode_statistics(result.samples, images, WEIGHTS)
    assert near >= 0.99 and p_value > 1e-3


def test_same_seed_same_output():
    sde, images, oracle = _oracle()
    guides = stroke_paintings(images, 2)
    runs = [sdedit(oracle, sde, guides, t0=0.5, steps=10, seed=s, progress=False).samples for s in (7, 7, 8)]
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])
