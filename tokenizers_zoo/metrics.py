"""Reconstruction and codebook metrics used by ``tokenizers-zoo eval``, validation and the benchmarks."""

from __future__ import annotations

import torch


def psnr(reconstruction: torch.Tensor, target: torch.Tensor, data_range: float = 2.0) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per item (``data_range`` 2 for signals in [-1, 1])."""
    error = (reconstruction.float() - target.float()).square().flatten(1).mean(1)
    return 10 * torch.log10(data_range**2 / error.clamp_min(1e-12))


class CodebookUsage:
    """Histogram of codes over a whole dataset: usage (fraction of codes ever used) and perplexity.

    With ``num_groups > 1`` the indices carry the group axis at dim 1 and each group has its own
    histogram; usage and perplexity are then the means over groups.
    """

    def __init__(self, codebook_size: int, num_groups: int = 1):
        self.codebook_size, self.num_groups = codebook_size, num_groups
        self.counts = torch.zeros(num_groups, codebook_size, dtype=torch.float64)

    def update(self, indices: torch.Tensor) -> None:
        per_group = indices.movedim(1, -1) if self.num_groups > 1 else indices[..., None]
        per_group = per_group.reshape(-1, self.num_groups).cpu()
        offsets = torch.arange(self.num_groups) * self.codebook_size
        flat = torch.bincount((per_group + offsets).reshape(-1), minlength=self.counts.numel())
        self.counts += flat.double().view_as(self.counts)

    @property
    def usage(self) -> float:
        return float((self.counts > 0).double().mean())

    @property
    def perplexity(self) -> float:
        probs = self.counts / self.counts.sum(1, keepdim=True).clamp_min(1)
        return float(torch.exp(-(probs * probs.clamp_min(1e-300).log()).sum(1)).mean())
