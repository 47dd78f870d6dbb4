import pytest
import torch

from sde_edge.config import default_diffusion
from sde_edge.sde import EdgePreservingSDE


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def make_sde():
    """EdgePreservingSDE from the paper's defaults with some fields replaced."""

    def make(**overrides):
        return EdgePreservingSDE(default_diffusion(**overrides))

    return make


def edge_rich_images(k, size=8, seed=0, dtype=torch.float64):
    """K distinct 8x8 images in [-1, 1] made of random rectangles: strong edges, flat interiors."""
    generator = torch.Generator().manual_seed(seed)
    images = -torch.ones(k, 1, size, size, dtype=dtype)
    for image in images:
        for _ in range(3):
            top, left = torch.randint(0, size - 2, (2,), generator=generator).tolist()
            height, width = torch.randint(2, size // 2 + 1, (2,), generator=generator).tolist()
            image[:, top : top + height, left : left + width] = 2 * torch.rand((), generator=generator, dtype=dtype) - 1
    return images
