"""Exponential moving average of the weights, with the usual warm-up of the decay."""
import copy

import torch


class EMA:
    """Holds an averaged copy of ``model``; decay = min(rate, (1 + n) / (10 + n)) after n updates."""

    def __init__(self, model, rate):
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"model.ema_rate must lie in [0, 1), got {rate!r}")
        self.rate = rate
        self.num_updates = 0
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model):
        decay = min(self.rate, (1.0 + self.num_updates) / (10.0 + self.num_updates))
        self.num_updates += 1
        averages, currents = list(self.model.parameters()), [p.detach() for p in model.parameters()]
        torch._foreach_lerp_(averages, currents, 1.0 - decay)  # one fused pass over all tensors
        for average, current in zip(self.model.buffers(), model.buffers()):
            average.copy_(current)

    def state_dict(self):
        return {"model": self.model.state_dict(), "num_updates": self.num_updates}

    def load_state_dict(self, state):
        self.model.load_state_dict(state["model"])
        self.num_updates = int(state["num_updates"])
