"""The isotropic baseline of celeba64_edge.py: plain DDPM, same network, data and budget."""
from pathlib import Path

from sde_edge.config import load_config


def get_config():
    config = load_config(Path(__file__).with_name("celeba64_edge.py"))
    config.diffusion.tau = "isotropic"
    return config
