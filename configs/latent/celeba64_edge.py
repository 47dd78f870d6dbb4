"""Latent edge-preserving diffusion on a CelebA-size image folder, for a GPU: the paper's latent
setting where its text gives it (batch 128, T = 500, tau linear, Adam) through a pretrained first
stage on disk, e.g. the `vae/` folder of a Stable Diffusion download (diffusers' AutoencoderKL,
f = 8, 4 latent channels, its own scaling factor 0.18215 read from its config.json):

    sde-edge train --config configs/latent/celeba64_edge.py --workdir runs/celeba64_latent_edge \\
        --config.data.root=/data/celeba --config.data.latent.autoencoder=/models/sd-vae/vae

At 64 px that is an 8 x 8 x 4 latent; at 256 px (--config.data.image_size=256) 32 x 32 x 4."""
from pathlib import Path

from sde_edge.config import load_config


def get_config():
    config = load_config(Path(__file__).parents[1] / "celeba64_edge.py")
    config.data.num_channels = 3
    config.data.random_flip = False
    config.data.latent.autoencoder = "models/sd-vae/vae"
    config.diffusion.edge_channels = "each"
    config.training.batch_size = 128
    config.training.n_iters = 234_000  # ~1,000 epochs of 30,000 images at batch 128, the paper's latent CelebA
    config.model.attn_resolutions = (4,)
    return config
