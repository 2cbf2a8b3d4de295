"""Exponential moving average of a model's weights (evaluation and release use the average)."""

from __future__ import annotations

import torch
from torch import nn


class WeightEMA:
    """Keeps ``average = decay * average + (1 - decay) * weight`` for every floating parameter;
    buffers (codebook statistics, counters) are copied as they are."""

    def __init__(self, model: nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.state = {key: value.detach().clone() for key, value in model.state_dict().items()}
        self._parameters = {name for name, p in model.named_parameters() if p.is_floating_point()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for key, value in model.state_dict().items():
            if key in self._parameters:
                self.state[key].lerp_(value.detach(), 1.0 - self.decay)
            else:
                self.state[key].copy_(value)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        missing = self.state.keys() - state.keys()
        if missing:
            raise KeyError(f"EMA state lacks {sorted(missing)[:5]}")
        for key, value in state.items():
            self.state[key].copy_(value)
