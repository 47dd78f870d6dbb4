"""D-sigma on 16x16 `shapes`: isotropic noise trained with the paper's edge-model loss (scaled
noise, Eq. 15 weighting), the paper recipe otherwise. Against E it isolates the noise shape at
equal loss; against D (shapes_ddpm.py) the loss weighting at equal noise."""
from pathlib import Path

from sde_edge.config import load_config


def get_config():
    config = load_config(Path(__file__).with_name("shapes_edge.py"))
    config.diffusion.tau = "isotropic"
    # the sweep's choice for D-sigma (FD of the EMA weights on the validation split, 2,500 iterations,
    # seed 0): lr 2e-3, no clipping (7.04; 8.68-10.6 for the other cells); warm-up and EMA as E's
    config.optim.lr = 2e-3
    return config
