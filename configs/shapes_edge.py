"""Edge-preserving diffusion on 16x16 grey `shapes` (procedural, labelled, sharp edges): the
demo's network and budget (about 9 minutes on 2 CPU cores)."""
from pathlib import Path

from sde_edge.config import load_config


def get_config():
    config = load_config(Path(__file__).with_name("digits_edge.py"))
    config.data.dataset = "shapes"
    config.data.image_size = 16
    config.data.num_channels = 1
    return config
