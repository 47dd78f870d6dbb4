"""The first stage for 128 px shapes: f = 8 (128 x 128 x 1 -> 16 x 16 x 4), otherwise as
configs/latent/shapes64_autoencoder.py. Train it before the 128 px latent runs:

    sde-edge train-autoencoder --config configs/latent/shapes128_autoencoder.py \\
        --workdir runs/latent/shapes128_autoencoder
"""
from pathlib import Path

from sde_edge.config import load_config


def get_config():
    config = load_config(Path(__file__).with_name("shapes64_autoencoder.py"))
    config.data.image_size = 128
    config.autoencoder.block_out_channels = (16, 32, 32, 32)  # four levels: f = 8
    config.eval.batch_size = 100
    return config
