"""D-sigma on 16x16 sklearn `digits`: isotropic noise trained with the paper's edge-model loss (scaled
noise, Eq. 15 weighting), the paper recipe otherwise. Against E it isolates the noise shape at
equal loss; against D (digits_ddpm.py) the loss weighting at equal noise."""
from pathlib import Path

from sde_edge.config import load_config


def get_config():
    config = load_config(Path(__file__).with_name("digits_edge.py"))
    config.diffusion.tau = "isotropic"
    return config
