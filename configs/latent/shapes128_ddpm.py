"""D on the latents of configs/latent/shapes128_edge.py."""
from pathlib import Path

from sde_edge.config import load_config


def get_config():
    config = load_config(Path(__file__).with_name("shapes64_ddpm.py"))
    config.data.image_size = 128
    config.data.latent.autoencoder = "runs/latent/shapes128_autoencoder"
    return config
