"""The isotropic baseline of shapes_edge.py: plain DDPM / VP-SDE, same network and budget."""
from pathlib import Path

from sde_edge.config import load_config


def get_config():
    config = load_config(Path(__file__).with_name("shapes_edge.py"))
    config.diffusion.tau = "isotropic"
    return config
