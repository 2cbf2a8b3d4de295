"""Adaptive group normalisation conditioned on a style latent (WeTok's decoder, ``AdaptiveGroupNorm`` in the
official ``improved_model.py``), and the noise input of its generative decoder."""

from __future__ import annotations

import torch
from torch import nn


class AdaptiveGroupNorm(nn.Module):
    """GroupNorm without affine parameters, then a per-channel scale and shift computed from the style's
    per-channel statistics over its positions: ``scale = gamma(sqrt(var(style) + eps))`` with the unbiased
    variance (torch's default, as in the official code), ``shift = beta(mean(style))``; ``gamma`` and ``beta``
    are ``Linear(style_channels, channels)``. ``eps`` (1e-6) serves the norm and the variance alike.
    """

    def __init__(self, style_channels: int, channels: int, norm_groups: int = 32, eps: float = 1e-6):
        super().__init__()
        self.norm = nn.GroupNorm(norm_groups, channels, eps=eps, affine=False)
        self.gamma = nn.Linear(style_channels, channels)
        self.beta = nn.Linear(style_channels, channels)
        self.eps = eps

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        positions = style.flatten(2)
        if positions.shape[-1] < 2:
            raise ValueError(f"adaptive normalisation needs a style latent with at least 2 positions, got shape {tuple(style.shape)}")
        scale = self.gamma((positions.var(dim=-1) + self.eps).sqrt())
        shift = self.beta(positions.mean(dim=-1))
        return scale[:, :, None, None] * self.norm(x) + shift[:, :, None, None]


def with_noise(latent: torch.Tensor, noise: torch.Tensor | None, generator: torch.Generator | None) -> torch.Tensor:
    """``cat([latent, noise], dim=1)``: the generative decoder's input. ``noise`` must have the latent's shape;
    without it, N(0, 1) noise is drawn from ``generator`` (else the global random state)."""
    if noise is not None and generator is not None:
        raise ValueError("pass noise or a generator to draw it from, not both")
    if noise is None:
        draw_on = latent.device if generator is None else generator.device
        noise = torch.randn(latent.shape, generator=generator, device=draw_on, dtype=latent.dtype).to(latent.device)
    elif not isinstance(noise, torch.Tensor) or not noise.is_floating_point():
        raise TypeError(f"noise must be a floating-point tensor, got {type(noise).__name__} {getattr(noise, 'dtype', '')}")
    elif noise.shape != latent.shape:
        raise ValueError(f"noise must have the latent's shape {tuple(latent.shape)}, got {tuple(noise.shape)}")
    elif noise.device != latent.device:
        raise ValueError(f"noise is on {noise.device} but the latent is on {latent.device}")
    return torch.cat([latent, noise.to(latent.dtype)], dim=1)
