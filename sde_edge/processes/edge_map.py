"""Sobel edge map e(x0) in [0, 1] (paper_appendix/math.md, section 1)."""
import torch
import torch.nn.functional as F

EDGE_NORMS = ("image", "batch")
EDGE_PADDINGS = ("replicate", "zeros")
EDGE_CHANNELS = ("sum", "each")  # the Sobel of the channel sum (images), or summed over channels (latents)

_SOBEL_X = ((1.0, 0.0, -1.0), (2.0, 0.0, -2.0), (1.0, 0.0, -1.0))
# Keeps a flat image at e = 0 instead of 0 / 0.
_NORM_EPS = 1e-12


def edge_map(x0, *, norm="image", padding="replicate", channels="sum"):
    """Squared Sobel gradient magnitude, normalised to [0, 1].

    x0: (B, C, H, W). Returns (B, 1, H, W) in x0's dtype and device, which
    broadcasts over the channels. ``channels='sum'`` takes the gradient of the
    channel sum (an image's grey level, the paper's); ``'each'`` sums the squared
    gradient magnitudes of the channels (a latent's channels have signs of their
    own, and their sum could cancel an edge). ``norm='image'`` divides by each
    image's own maximum; ``'batch'`` by the maximum over the whole batch (the public code).
    """
    if x0.dim() != 4:
        raise ValueError(f"edge_map expects images of shape (B, C, H, W), got shape {tuple(x0.shape)}")
    if norm not in EDGE_NORMS:
        raise ValueError(f"edge_norm must be one of {EDGE_NORMS}, got {norm!r}")
    if padding not in EDGE_PADDINGS:
        raise ValueError(f"edge_padding must be one of {EDGE_PADDINGS}, got {padding!r}")
    if channels not in EDGE_CHANNELS:
        raise ValueError(f"edge_channels must be one of {EDGE_CHANNELS}, got {channels!r}")
    planes = x0.sum(dim=1, keepdim=True) if channels == "sum" else x0
    count = planes.shape[1]
    sobel_x = torch.tensor(_SOBEL_X, dtype=x0.dtype, device=x0.device)
    kernels = torch.stack([sobel_x, sobel_x.T]).unsqueeze(1).repeat(count, 1, 1, 1)  # (2C, 1, 3, 3)
    if padding == "replicate":
        gradients = F.conv2d(F.pad(planes, (1, 1, 1, 1), mode="replicate"), kernels, groups=count)
    else:
        gradients = F.conv2d(planes, kernels, padding=1, groups=count)
    magnitude = gradients.square().sum(dim=1, keepdim=True)
    if norm == "image":
        peak = magnitude.amax(dim=(1, 2, 3), keepdim=True)
    else:
        peak = magnitude.amax()
    return magnitude / (peak + _NORM_EPS)
