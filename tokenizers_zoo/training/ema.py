"""Exponential moving average of a model's trainable weights (evaluation and release use the average)."""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import nn


class WeightEMA:
    """Keeps ``average = decay * average + (1 - decay) * weight`` for every trainable parameter.

    Only parameters with ``requires_grad`` are averaged, as in the official LitEma: frozen weights (a
    100k x 768 code table, a frozen encoder) and buffers (codebook statistics) are taken from the live
    model when the average is swapped in, never copied every step.
    """

    def __init__(self, model: nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.state = {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for name, p in model.named_parameters():
            if name in self.state:
                self.state[name].lerp_(p.detach(), 1.0 - self.decay)

    @contextlib.contextmanager
    def swapped_in(self, model: nn.Module) -> Iterator[None]:
        """Within the block the model holds the averaged weights; the live ones come back afterwards."""
        parameters = dict(model.named_parameters())
        live = {name: parameters[name].detach().clone() for name in self.state}
        with torch.no_grad():
            for name, value in self.state.items():
                parameters[name].copy_(value)
        try:
            yield
        finally:
            with torch.no_grad():
                for name, value in live.items():
                    parameters[name].copy_(value)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if state.keys() != self.state.keys():
            raise KeyError(f"EMA state does not match the model's trainable parameters: {sorted(state.keys() ^ self.state.keys())[:5]}")
        for key, value in state.items():
            self.state[key].copy_(value)
