"""Padding masks inside quantizers: positions marked invalid take no part in losses, updates or statistics."""

from __future__ import annotations

import torch


def flat_mask(mask: torch.Tensor | None, z: torch.Tensor) -> torch.Tensor | None:
    """A latent's mask (its shape without dim 1, True = valid), checked and flattened to one flag per vector."""
    if mask is None:
        return None
    expected = (z.shape[0], *z.shape[2:])
    if mask.dtype != torch.bool or tuple(mask.shape) != expected:
        raise ValueError(f"mask must be a bool tensor of shape {expected}, got {mask.dtype} {tuple(mask.shape)}")
    return mask.reshape(-1)


def select_valid(values: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    """The rows of ``values`` whose flag is set (all of them without a mask)."""
    return values if valid is None else values[valid]


def masked_mse(a: torch.Tensor, b: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    """Mean squared difference of vectors ``[M, D]``, averaged over the valid ones."""
    per_vector = (a - b).square().mean(dim=1)
    if valid is None:
        return per_vector.mean()
    return (per_vector * valid).sum() / valid.sum().clamp_min(1)
