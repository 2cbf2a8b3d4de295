"""Reconstruction and codebook metrics used by ``tokenizers-zoo eval`` and the recipes."""

from __future__ import annotations

import torch


def psnr(reconstruction: torch.Tensor, target: torch.Tensor, data_range: float = 2.0) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per item (``data_range`` 2 for signals in [-1, 1])."""
    error = (reconstruction.float() - target.float()).square().flatten(1).mean(1)
    return 10 * torch.log10(data_range**2 / error.clamp_min(1e-12))


class CodebookUsage:
    """Histogram of codes over a whole dataset: usage (fraction of codes ever used) and perplexity."""

    def __init__(self, codebook_size: int):
        self.counts = torch.zeros(codebook_size, dtype=torch.float64)

    def update(self, indices: torch.Tensor) -> None:
        self.counts += torch.bincount(indices.flatten().cpu(), minlength=self.counts.numel()).double()

    @property
    def usage(self) -> float:
        return float((self.counts > 0).double().mean())

    @property
    def perplexity(self) -> float:
        probs = self.counts / self.counts.sum().clamp_min(1)
        return float(torch.exp(-(probs * probs.clamp_min(1e-300).log()).sum()))
