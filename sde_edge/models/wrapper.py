"""The network wrapped as a *model* (paper_appendix/math.md, section 8): it carries ``parameterization``."""
import torch
from torch import nn

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
        usual layout): the same math to rounding, sometimes faster convolutions (``model.channels_last``;
        on one CPU thread 1.25x for a 250-image batch of the 32 px comparison network, 1.00x for the
        16 px demo UNet; on an H100 0.80x for the 64 px one: ``tools/bench.py``, README)."""
        self.to(memory_format=torch.channels_last)
        self.channels_last = True
        return self

    def use_compile(self, backend="inductor"):
        """Run the network through ``torch.compile`` (for sampling; training compiles in
        ``fast_training``): the same math to rounding; on an H100 the 64 px comparison network's
        forward of 250 images took 29 ms compiled against 52 ms eager. The first call compiles."""
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
    net = UNet(
        in_channels=config.data.num_channels,
        image_size=config.data.image_size,
        nf=m.nf,
        ch_mult=tuple(m.ch_mult),
        num_res_blocks=m.num_res_blocks,
        attn_resolutions=tuple(m.attn_resolutions),
        dropout=m.dropout,
        num_groups=m.num_groups,
    )
    return ScoreModel(net, m.parameterization)
