"""Bits per pixel of image tokens: the plain cost of fixed-length indices, and the cost under an ideal entropy code."""

from __future__ import annotations

from typing import Sequence

import torch

from ..metrics import CodebookUsage, bits_per_pixel


def plain_bpp(indices: torch.Tensor, image_size: tuple[int, int], codebook_sizes: int | Sequence[int]) -> float:
    """Tokens per image x log2(codebook size) / pixels; with one size per group (indices ``[B, G, h, w]``) the
    groups' costs add up. PTQ indices ``[B, C, h, w]`` with ``2^b`` levels cost ``C h w b / (H W)``."""
    if isinstance(codebook_sizes, int):
        return bits_per_pixel(indices, image_size, codebook_sizes)
    if indices.ndim < 2 or indices.shape[1] != len(codebook_sizes):
        raise ValueError(f"{len(codebook_sizes)} codebook sizes need indices with that many groups on dim 1, got {tuple(indices.shape)}")
    return sum(bits_per_pixel(indices[:, g], image_size, size) for g, size in enumerate(codebook_sizes))


def entropy_bits(usage: CodebookUsage) -> torch.Tensor:
    """Empirical entropy of each group's index histogram, in bits per token: ``[G]``."""
    return usage.group_perplexity().log2()


def entropy_bpp(usage: CodebookUsage, pixels: int) -> float:
    """Bits per pixel when each group's tokens are entropy-coded with that group's histogram over the data:
    sum over groups of tokens x entropy, over the ``pixels`` of all the images counted. A bound for a static
    code: the histogram itself is not counted, and an adaptive or context model could do better."""
    if pixels < 1:
        raise ValueError(f"pixels must be positive, got {pixels}")
    return float((usage.counts.sum(1) * entropy_bits(usage)).sum() / pixels)
