"""The isotropic baseline of afhq_cat128_edge.py: plain DDPM, same network, data and budget."""
from pathlib import Path

from sde_edge.config import load_config


def get_config():
    config = load_config(Path(__file__).with_name("afhq_cat128_edge.py"))
    config.diffusion.tau = "isotropic"
    return config
