"""Small tensor helpers shared by the SDEs, the denoiser, the samplers and the losses."""
import torch


def time_like(t, x):
    """Turn ``t`` (a number, or a tensor of B times shaped (B,) or (B, 1, 1, 1)) into shape
    (B, 1, 1, 1) in x's dtype and device."""
    t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
    batch_shape = (x.shape[0],) + (1,) * (x.dim() - 1)
    if t.dim() == 0:
        return t.expand(batch_shape)
    if t.shape not in (batch_shape, batch_shape[:1]):
        raise ValueError(
            f"t must be a number or a tensor of shape ({x.shape[0]},) to match x, got shape {tuple(t.shape)}"
        )
    return t.reshape(batch_shape)


def check_images(x, name="x"):
    """Raise unless x is a batch of images (B, C, H, W)."""
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} must have shape (B, C, H, W), got {shape}")


def check_data_range(x, name="x"):
    """Raise unless x is a batch of finite images scaled to [-1, 1]."""
    check_images(x, name)
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} holds NaN or inf values")
    low, high = x.min().item(), x.max().item()
    if low < -1 - 1e-6 or high > 1 + 1e-6:
        raise ValueError(f"{name} must be scaled to [-1, 1] (256 levels); its values span [{low:.3g}, {high:.3g}]")


def is_brownian_path(generator):
    """Whether ``generator`` is a ``sampling.brownian.BrownianNoise`` (a path that gives each time
    step its noise) rather than None or a torch.Generator."""
    return generator is not None and not isinstance(generator, torch.Generator)


def noise_like(y, generator, t=None, s=None):
    """Standard normal noise shaped like y, from ``generator`` (None: torch's global one). A
    ``sampling.brownian.BrownianNoise`` in its place gives the step from t to s its share of one
    Brownian path instead (``t``, ``s``: the step's ends; None where the noise is not a step's)."""
    if not is_brownian_path(generator):
        return torch.randn(y.shape, generator=generator, device=y.device, dtype=y.dtype)
    return generator.step_noise(y, t, s)
