"""Networks (which know nothing about the SDE), the parameterisation wrapper and EMA."""
from sde_edge.models.ema import EMA
from sde_edge.models.unet import UNet
from sde_edge.models.wrapper import ScoreModel, build_model

__all__ = ["EMA", "UNet", "ScoreModel", "build_model"]
