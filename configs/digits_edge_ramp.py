"""digits_edge.py with the continuous `linear_ramp` transition, for SDE / ODE samplers."""
from pathlib import Path

from sde_edge.config import load_config


def get_config():
    config = load_config(Path(__file__).with_name("digits_edge.py"))
    config.diffusion.tau = "linear_ramp"
    return config
