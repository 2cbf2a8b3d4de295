"""What the image-family tests share: seeded random images and parameter counts."""

import torch


def images(batch=2, size=32, seed=0):
    """``batch`` seeded random RGB images in [-1, 1]."""
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def parameter_count(module):
    return sum(p.numel() for p in module.parameters())
