"""The network wrapped as a *model* (paper_appendix/math.md, section 8): it carries ``parameterization``."""
import torch
from torch import nn

from sde_edge.latent.first_stage import model_space
from sde_edge.models.unet import UNet


class ScoreModel(nn.Module):
    """``model(x, t)`` -> the network output, read as ``parameterization`` says."""

    def __init__(self, net, parameterization):
        super().__init__()
        self.net, self.parameterization = net, parameterization
        self.channels = getattr(net, "in_channels", None)  # what sample() checks the images against
        self.channels_last, self.compiled_with = False, None

    def use_channels_last(self):
        """Run the network in channels-last memory (weights and input; the output comes back in the
        usual layout): the same math to rounding, faster convolutions for some networks and devices and
        slower for others (``model.channels_last``; ``tools/bench.py`` measures it: docs/benchmarks.md)."""
        self.to(memory_format=torch.channels_last)
        self.channels_last = True
        return self

    def use_compile(self, backend="inductor"):
        """Run the network through ``torch.compile`` (for sampling; training compiles in
        ``sde_edge.training.fast``): the same math to rounding, and it pays on a GPU (docs/benchmarks.md).
        The first call compiles."""
        self.net, self.compiled_with = torch.compile(self.net, backend=backend), backend
        return self

    def forward(self, x, t):
        if not self.channels_last:
            return self.net(x, t)
        return self.net(x.contiguous(memory_format=torch.channels_last), t).contiguous()


def build_model(config):
    """The model of ``config.model`` for images of ``config.data``."""
    m = config.model
    if m.name != "unet":
        raise ValueError(f"model.name must be 'unet', got {m.name!r}")
    channels, size = model_space(config.data)  # the images, or a first stage's latents
    net = UNet(
        in_channels=channels,
        image_size=size,
        nf=m.nf,
        ch_mult=tuple(m.ch_mult),
        num_res_blocks=m.num_res_blocks,
        attn_resolutions=tuple(m.attn_resolutions),
        dropout=m.dropout,
        num_groups=m.num_groups,
    )
    return ScoreModel(net, m.parameterization)
