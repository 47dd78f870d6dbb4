"""D-sigma on the same latents as configs/latent/shapes64_edge.py: isotropic noise trained with E's loss
(the scaled noise, the paper's Eq. 15 weighting; configs/paper/shapes_isotropic_edge_loss.py), at the
recipe the latent sweep chose for it (lr 5e-4, gradients clipped at 1). Against E it isolates the noise
shape at equal loss; against D (shapes64_ddpm.py) the loss weighting at equal noise."""
from pathlib import Path

from sde_edge.config import load_config

ROOT = Path(__file__).resolve().parents[2]


def get_config():
    config = load_config(ROOT / "configs" / "paper" / "shapes_isotropic_edge_loss.py")
    edge = load_config(ROOT / "configs" / "latent" / "shapes64_edge.py")
    config.data = edge.data
    config.diffusion.edge_channels = "each"  # ignored by the isotropic process; kept equal to E's
    config.model.attn_resolutions = edge.model.attn_resolutions
    # the latent sweep's choice for D-sigma: lr 5e-4, clipping at 1 (85.3 +- 13.2; the 16 px recipe,
    # lr 2e-3 without clipping: 99.7 +- 13.8)
    config.optim.lr = 5e-4
    config.optim.grad_clip = 1.0
    return config
