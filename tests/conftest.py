import pytest
import torch

from sde_edge.config import default_diffusion
from sde_edge.oracle import rectangle_images
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
    return rectangle_images(k, size=size, seed=seed, dtype=dtype)
