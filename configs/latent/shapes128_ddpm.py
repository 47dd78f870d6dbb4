"""D on the latents of configs/latent/shapes128_edge.py (the kept f = 8 first stage)."""
from pathlib import Path

from sde_edge.config import load_config


def get_config():
    config = load_config(Path(__file__).with_name("shapes64_ddpm.py"))
    config.data.image_size = 128
    config.data.latent.autoencoder = load_config(Path(__file__).with_name("shapes128_edge.py")).data.latent.autoencoder
    return config
