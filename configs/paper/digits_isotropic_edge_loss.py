"""shapes_isotropic_edge_loss.py on 16x16 sklearn `digits` (the recipe the shapes sweep chose), 3,000 iterations."""
from pathlib import Path

from sde_edge.config import load_config


def get_config():
    config = load_config(Path(__file__).with_name("shapes_isotropic_edge_loss.py"))
    config.data.dataset = "digits"
    config.training.n_iters = 3_000
    return config
