"""Edge-preserving diffusion on 16x16 sklearn digits: the CPU demo."""
from pathlib import Path

from sde_edge.config import load_config


def get_config():
    config = load_config(Path(__file__).with_name("default.py"))
    config.data.dataset = "digits"
    config.data.image_size = 16
    config.diffusion.tau = "linear"
    return config
