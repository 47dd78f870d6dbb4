"""E on latents of 128 px shapes (16 x 16 x 4 through the f = 8 first stage of
configs/latent/shapes128_autoencoder.py, trained into runs/latent/shapes128_autoencoder first)."""
from pathlib import Path

from sde_edge.config import load_config


def get_config():
    config = load_config(Path(__file__).with_name("shapes64_edge.py"))
    config.data.image_size = 128
    config.data.latent.autoencoder = "runs/latent/shapes128_autoencoder"
    return config
