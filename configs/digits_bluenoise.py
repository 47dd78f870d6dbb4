"""Blue-to-white noise (the BNDM baseline, Huang et al. 2024, in diagonal spectral form) on 16x16
digits: digits_edge.py's network, data and budget. The noise is blue (low frequencies suppressed
to 'bluenoise_floor' below 'bluenoise_cutoff' cycles/pixel) early on and turns white along a
linear ramp that ends at t_phi = 0.5, like the edge process's transition."""
from pathlib import Path

from sde_edge.config import load_config


def get_config():
    config = load_config(Path(__file__).with_name("digits_edge.py"))
    config.diffusion.process = "bluenoise"
    config.diffusion.basis = "dct"
    config.diffusion.tau = "linear_ramp"
    return config
