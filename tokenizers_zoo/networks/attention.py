"""Self-attention over latent positions with bounded memory, and the size limit checked before any work.

Attention over L positions costs L^2 time. On CPU, ``scaled_dot_product_attention`` takes its math path and
materialises the full L x L score matrix, so a 4096 x 4096 image through a VQ-VAE's mid-block attention
would ask for terabytes. Queries are therefore processed in chunks whose scores stay under a fixed bound,
and models refuse up front (``max_attention_positions``) inputs whose attention would not finish.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F

DEFAULT_MAX_ATTENTION_POSITIONS = 1 << 16  # a 256 x 256 latent: 4096 px at f16, 1024 px at f4
_MAX_SCORE_ELEMENTS = 1 << 24  # 64 MB of float32 scores per query chunk


def max_attention_positions() -> int:
    """Most positions a self-attention layer may attend over (``TOKENIZERS_ZOO_MAX_ATTENTION_POSITIONS``)."""
    value = os.environ.get("TOKENIZERS_ZOO_MAX_ATTENTION_POSITIONS")
    if value is None:
        return DEFAULT_MAX_ATTENTION_POSITIONS
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"TOKENIZERS_ZOO_MAX_ATTENTION_POSITIONS must be a positive integer, got {value!r}")
    return int(value)


def chunked_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``scaled_dot_product_attention`` over ``[B, heads, L, D]``, queries in chunks of bounded score size."""
    batch_heads, keys, queries = q.shape[0] * q.shape[1], k.shape[-2], q.shape[-2]
    step = max(1, _MAX_SCORE_ELEMENTS // (batch_heads * keys))
    if step >= queries:
        return F.scaled_dot_product_attention(q, k, v)
    return torch.cat([F.scaled_dot_product_attention(q[..., i : i + step, :], k, v) for i in range(0, queries, step)], dim=-2)
