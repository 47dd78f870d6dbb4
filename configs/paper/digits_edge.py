"""The paper's edge-preserving model (E) on 16x16 sklearn `digits`: shapes_edge.py's recipe (the
sweep chose it on shapes; there is no sweep on digits) for 3,000 iterations, which are enough for
upsampled 8x8 digits without sharp edges."""
from pathlib import Path

from sde_edge.config import load_config


def get_config():
    config = load_config(Path(__file__).with_name("shapes_edge.py"))
    config.data.dataset = "digits"
    config.training.n_iters = 3_000
    return config
