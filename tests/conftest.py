import os

import pytest
import torch

from helpers import PaperSchedule
from sde_edge.config import default_diffusion
from sde_edge.processes.registry import build_sde


def pytest_configure(config):
    if os.environ.get("PYTEST_XDIST_WORKER"):  # parallel workers share the cores: one thread each,
        os.environ["OMP_NUM_THREADS"] = "1"  # for the worker and the commands it starts
        torch.set_num_threads(1)


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def classifier_cache(tmp_path_factory):
    """Classifiers are trained once per test session into a temporary cache, never the user's; parallel
    workers share it (the cache's lock lets one of them train each classifier)."""
    with pytest.MonkeyPatch.context() as patch:
        if os.environ.get("PYTEST_XDIST_WORKER"):
            path = tmp_path_factory.getbasetemp().parent / "sde_edge_cache"
            path.mkdir(exist_ok=True)
        else:
            path = tmp_path_factory.mktemp("sde_edge_cache")
        patch.setenv("SDE_EDGE_CACHE", str(path))
        yield path


@pytest.fixture
def make_sde():
    """A process from the paper's defaults with some config.diffusion fields replaced."""

    def make(**overrides):
        return build_sde(default_diffusion(**overrides))

    return make


@pytest.fixture(scope="session")
def paper_schedule():
    return PaperSchedule()
