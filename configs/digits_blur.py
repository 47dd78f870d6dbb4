"""Blurring diffusion (Hoogeboom & Salimans 2023; the IHDM baseline with a N(0, I) prior) on
16x16 digits: digits_edge.py's network, data and budget. blur_sigma_max = 10 pixels is their
20 at 32 pixels scaled to 16, which keeps every frequency's damping lambda * tau the same."""
from pathlib import Path

from sde_edge.config import load_config


def get_config():
    config = load_config(Path(__file__).with_name("digits_edge.py"))
    config.diffusion.process = "blur"
    config.diffusion.basis = "dct"
    config.diffusion.blur_sigma_max = 10.0
    config.diffusion.blur_min_scale = 1e-3
    return config
