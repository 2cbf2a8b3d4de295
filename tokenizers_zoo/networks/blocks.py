"""Convolutional building blocks of the VQGAN family (taming-transformers naming, so checkpoints map 1:1).

The res and attention blocks take ``dims=2`` (images, ``Conv2d``) or ``dims=1`` (sequences, ``Conv1d``: the
Vocos decoder's ``pos_net`` in WavTokenizer and SimVQ-audio); names and maths are the same.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .attention import chunked_attention

CONVS = {1: nn.Conv1d, 2: nn.Conv2d}


def group_norm(channels: int, groups: int = 32) -> nn.GroupNorm:
    """GroupNorm as VQGAN uses it (eps 1e-6, affine)."""
    if groups < 1 or channels % groups:
        raise ValueError(f"{channels} channels cannot be split into {groups} norm groups")
    return nn.GroupNorm(groups, channels, eps=1e-6, affine=True)


class ResnetBlock(nn.Module):
    """GN -> swish -> conv3x3 -> GN -> swish -> dropout -> conv3x3, plus a 1x1 ``nin_shortcut`` when widths differ."""

    def __init__(self, in_channels: int, out_channels: int, dropout: float = 0.0, norm_groups: int = 32, dims: int = 2):
        super().__init__()
        conv = CONVS[dims]
        self.norm1 = group_norm(in_channels, norm_groups)
        self.conv1 = conv(in_channels, out_channels, 3, padding=1)
        self.norm2 = group_norm(out_channels, norm_groups)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = conv(out_channels, out_channels, 3, padding=1)
        self.nin_shortcut = conv(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.nin_shortcut(x) + h


class AttnBlock(nn.Module):
    """Single-head self-attention over all positions with 1x1 ``q``, ``k``, ``v``, ``proj_out`` and a residual."""

    def __init__(self, channels: int, norm_groups: int = 32, dims: int = 2):
        super().__init__()
        self.norm = group_norm(channels, norm_groups)
        self.q, self.k, self.v, self.proj_out = (CONVS[dims](channels, channels, 1) for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[:2]
        normed = self.norm(x)
        q, k, v = (proj(normed).reshape(b, 1, c, -1).transpose(2, 3) for proj in (self.q, self.k, self.v))
        out = chunked_attention(q, k, v).transpose(2, 3).reshape(x.shape)
        return x + self.proj_out(out)


class Downsample(nn.Module):
    """Halve the resolution: asymmetric zero pad (right, bottom) then a stride-2 3x3 conv."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):
    """Double the resolution: nearest-neighbour upsampling then a 3x3 conv."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


def run_blocks(blocks: nn.ModuleList, attention: nn.ModuleList, h: torch.Tensor) -> torch.Tensor:
    """Each res block in turn, each followed by its attention block when the level has them."""
    for index, block in enumerate(blocks):
        h = block(h)
        if len(attention):
            h = attention[index](h)
    return h
