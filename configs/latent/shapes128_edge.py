"""E on latents of 128 px shapes: 16 x 16 x 4 through the kept f = 8 first stage
(paper_appendix/reproduction/latent/first_stage_shapes128, trained by
configs/latent/shapes128_autoencoder.py); otherwise configs/latent/shapes64_edge.py."""
from pathlib import Path

from sde_edge.config import load_config

ROOT = Path(__file__).resolve().parents[2]
KEPT_FIRST_STAGE = ROOT / "paper_appendix" / "reproduction" / "latent" / "first_stage_shapes128"


def get_config():
    config = load_config(Path(__file__).with_name("shapes64_edge.py"))
    config.data.image_size = 128
    config.data.latent.autoencoder = str(KEPT_FIRST_STAGE)
    return config
