"""The paper's DDPM D on the same latents as configs/latent/shapes64_edge.py: the released code's
recipe (configs/paper/shapes_ddpm.py: unscaled eps, the DDPM loss) on the kept f = 4 first stage."""
from pathlib import Path

from sde_edge.config import load_config

ROOT = Path(__file__).resolve().parents[2]


def get_config():
    config = load_config(ROOT / "configs" / "paper" / "shapes_ddpm.py")
    edge = load_config(ROOT / "configs" / "latent" / "shapes64_edge.py")
    config.data = edge.data
    config.diffusion.edge_channels = "each"  # ignored by the isotropic process; kept equal to E's
    config.model.attn_resolutions = edge.model.attn_resolutions
    return config
