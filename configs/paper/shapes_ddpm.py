"""The paper's DDPM baseline (D) on 16x16 `shapes`: isotropic noise, the network predicts the
*unscaled* noise eps and is trained with the plain DDPM loss sum_pixels (eps_hat - eps)^2
(``eps`` + the ``variance`` weighting), with the same recipe as the paper's edge model (the sweep
chose the same optimiser settings for both)."""
from pathlib import Path

from sde_edge.config import load_config


def get_config():
    config = load_config(Path(__file__).with_name("shapes_edge.py"))
    config.diffusion.tau = "isotropic"
    config.model.parameterization = "eps"
    config.training.weighting = "variance"
    # the sweep's choice for D: lr 5e-4, no clipping, EMA 0.999 (4.95 on the validation split)
    config.optim.lr = 5e-4
    config.optim.grad_clip = 0.0
    config.model.ema_rate = 0.999
    return config
