"""The paper's DDPM baseline (D) on 16x16 sklearn `digits`: isotropic noise, the network predicts the
*unscaled* noise eps and is trained with the plain DDPM loss sum_pixels (eps_hat - eps)^2
(``eps`` + the ``variance`` weighting), with the same recipe as the paper's edge model."""
from pathlib import Path

from sde_edge.config import load_config


def get_config():
    config = load_config(Path(__file__).with_name("digits_edge.py"))
    config.diffusion.tau = "isotropic"
    config.model.parameterization = "eps"
    config.training.weighting = "variance"
    # the recipe the shapes sweep chose for D (no sweep on digits)
    config.optim.lr = 5e-4
    config.optim.grad_clip = 0.0
    config.model.ema_rate = 0.999
    return config
