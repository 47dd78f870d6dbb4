"""The first stage for 128 px shapes: f = 8 (128 x 128 x 1 -> 16 x 16 x 4), otherwise as
configs/latent/shapes64_autoencoder.py but narrower at full resolution. Train it before the 128 px
latent runs:

    sde-edge train-autoencoder --config configs/latent/shapes128_autoencoder.py \\
        --workdir runs/latent/shapes128_autoencoder

Its cost on one CPU thread (2-core AVX2 machine), measured: 1.9 s a step of 32 images with 8 channels
at full resolution (16 there, as at 64 px: 4.7 s, 5 h for 4,000 steps), so 3,000 steps take 1.6 h.
"""
from pathlib import Path

from sde_edge.config import load_config


def get_config():
    config = load_config(Path(__file__).with_name("shapes64_autoencoder.py"))
    config.data.image_size = 128
    config.autoencoder.block_out_channels = (8, 16, 32, 32)  # four levels: f = 8
    config.autoencoder.num_groups = 8
    config.training.n_iters = 3000
    config.eval.batch_size = 100
    return config
