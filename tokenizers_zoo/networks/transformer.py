"""Pre-LN transformer blocks over token sequences, in OpenAI CLIP's layout (as FQGAN uses them).

Module names follow CLIP's ``ResidualAttentionBlock`` (``ln_1``, ``attn`` as ``nn.MultiheadAttention`` with
``in_proj_weight`` / ``in_proj_bias`` / ``out_proj``, ``ln_2``, ``mlp.c_fc`` / ``mlp.c_proj``) and a stack's
names its ``positional_embedding``, ``ln_pre``, ``transformer.{i}`` and ``ln_post``, so official FQGAN weights
load without renaming.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn


class ResidualAttentionBlock(nn.Module):
    """``x + attn(ln_1(x))`` then ``x + mlp(ln_2(x))``; the MLP is Linear -> GELU -> Linear, ``mlp_ratio`` wide."""

    def __init__(self, width: int, heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        if heads < 1 or width % heads:
            raise ValueError(f"a width of {width} cannot be split into {heads} attention heads")
        hidden = int(width * mlp_ratio)
        self.ln_1 = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(OrderedDict(c_fc=nn.Linear(width, hidden), gelu=nn.GELU(), c_proj=nn.Linear(hidden, width)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, L, width]`` -> ``[B, L, width]``."""
        normed = self.ln_1(x)
        x = x + self.attn(normed, normed, normed, need_weights=False)[0]
        return x + self.mlp(self.ln_2(x))


class PositionalTransformer(nn.Module):
    """Learned positional embedding ``[positions, width]`` (initialised N(0, width^-1)), LayerNorm, ``layers``
    :class:`ResidualAttentionBlock` s, LayerNorm: ``[B, positions, width]`` -> the same shape."""

    def __init__(self, positions: int, width: int, layers: int, heads: int):
        super().__init__()
        self.positional_embedding = nn.Parameter(torch.randn(positions, width) * width**-0.5)
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = nn.ModuleList(ResidualAttentionBlock(width, heads) for _ in range(layers))
        self.ln_post = nn.LayerNorm(width)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        positions = self.positional_embedding.shape[0]
        if tokens.shape[1] != positions:
            raise ValueError(f"this transformer has a positional embedding for {positions} tokens, got {tokens.shape[1]}")
        x = self.ln_pre(tokens + self.positional_embedding.to(tokens.dtype))
        for block in self.transformer:
            x = block(x)
        return self.ln_post(x)


class FactorizedAdapter(PositionalTransformer):
    """FQGAN's per-factor head: a :class:`PositionalTransformer` over the ``grid x grid`` positions of a feature
    map ``[B, width, grid, grid]`` (raster order), returning a map of the same shape."""

    def __init__(self, grid: int, width: int, layers: int, heads: int):
        super().__init__(grid * grid, width, layers, heads)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        b, c, h, w = features.shape
        tokens = super().forward(features.flatten(2).transpose(1, 2))
        return tokens.transpose(1, 2).reshape(b, c, h, w)
