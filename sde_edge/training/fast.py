"""The training's fast arithmetic, each an option that leaves the math unchanged: mixed precision for
the network (``training.precision``), ``torch.compile`` (``training.compile``), channels-last
memory (``model.channels_last``) and the fused Adam kernel (``optim.fused``).

Only the network runs in half precision: the SDE's coefficients, sigma, the per-pixel loss weights
(1 / sigma^2 and G^2 / sigma^4 overflow in fp16), the optimiser's state, the EMA and the checkpoints
stay fp32, so a run resumes in any precision. fp16 scales the loss (``torch.amp.GradScaler``); a
step the scaler skips for an overflow is the scaler's business, not a divergence.
"""
import torch

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class FastNetwork(torch.nn.Module):
    """``network(x, t)`` under autocast, returning fp32; carries the wrapped model's
    ``parameterization`` so that the Denoiser reads it as before."""

    def __init__(self, network, parameterization, precision="fp32"):
        super().__init__()
        self.network, self.parameterization = network, parameterization
        self.dtype = PRECISIONS[precision]

    def forward(self, x, t):
        if self.dtype is None:
            return self.network(x, t)
        with torch.autocast(x.device.type, dtype=self.dtype):
            output = self.network(x, t)
        return output.float()


def fast_network(model, network, config):
    """The callable the training loss calls: ``network`` (the model, or its DDP wrapper) compiled and
    autocast as ``config`` asks, the model channels-last (``ScoreModel.use_channels_last``: its
    state dict, EMA and checkpoints are the same tensors in another layout)."""
    if config.model.channels_last:
        model.use_channels_last()
    if config.training.compile:
        network = torch.compile(network, backend=config.training.compile_backend)
    if config.training.precision == "fp32" and not config.training.compile:
        return network
    return FastNetwork(network, model.parameterization, config.training.precision)


def choose_convolutions(config, device):
    """On CUDA, let cuDNN time its convolution algorithms once per shape and keep the fastest
    (``training.cudnn_benchmark``; the same arithmetic to rounding; its gain: docs/benchmarks.md).
    A process-wide switch, set at every training's start."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = bool(config.training.cudnn_benchmark)


def grad_scaler(config, device):
    """A GradScaler for fp16 (None otherwise)."""
    if config.training.precision != "fp16":
        return None
    return torch.amp.GradScaler(device.type)


def build_optimizer(model, optim_config):
    """Adam on the model's parameters; ``optim.fused`` picks the fused kernel (one launch for all
    tensors on a GPU), else torch's default (foreach where supported)."""
    o = optim_config
    return torch.optim.Adam(model.parameters(), lr=o.lr, betas=(o.beta1, 0.999), eps=o.eps,
                            weight_decay=o.weight_decay, fused=True if o.fused else None)


class Updater:
    """Backward, (unscale,) clip and step: fp32 as it was, fp16 through the gradient scaler."""

    def __init__(self, model, config, device):
        self.model, self.optimizer = model, build_optimizer(model, config.optim)
        self.scaler = grad_scaler(config, device)
        self.clip = config.optim.grad_clip if config.optim.grad_clip > 0 else float("inf")

    @property
    def scaled(self):
        return self.scaler is not None

    def backward(self, loss):
        """The gradient of ``loss``, clipped; returns its norm before clipping."""
        self.optimizer.zero_grad(set_to_none=True)
        (loss if self.scaler is None else self.scaler.scale(loss)).backward()
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        return torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)

    def step(self, lr, apply):
        """Update at ``lr`` if ``apply``; the scaler adjusts its scale either way. Returns ``apply``."""
        if apply:
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            if self.scaler is None:
                self.optimizer.step()
            else:
                self.scaler.step(self.optimizer)
        if self.scaler is not None:
            self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        return apply
