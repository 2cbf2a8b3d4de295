"""Groups with a quantizer each, built from its own spec: e.g. codebooks of different sizes per group, so that
each group (an FQGAN factor, say) has its own bitrate, as after shrinking one factor's codebook and not another's."""

from __future__ import annotations

from typing import Any

import torch

from .grouped import GroupedQuantizer
from .registry import build_quantizer, register_quantizer


@register_quantizer("per_group")
class PerGroupQuantizer(GroupedQuantizer):
    """Features ``[g * d, (g + 1) * d)`` quantized by the quantizer ``quantizers[g]`` describes (a spec without
    ``groups``), ``d = dim / len(quantizers)``; indices ``[B, G, ...]`` as for any grouped quantizer.

    ``codebook_sizes`` lists each group's size and indices of group g lie in ``[0, codebook_sizes[g])``;
    ``codebook_size`` is the largest (what token files and histograms are sized by). Usage statistics are
    per group over that group's own codes. ``group_loss``: as ``"group_loss"`` in :func:`build_quantizer`.
    """

    def __init__(self, dim: int, quantizers: tuple[dict[str, Any], ...], *, group_loss: str = "sum"):
        if len(quantizers) < 2 or dim % len(quantizers):
            raise ValueError(f"{dim} features cannot be split into {len(quantizers)} equal groups (at least two)")
        specs = iter(quantizers)
        super().__init__(lambda: build_quantizer(next(specs), dim // len(quantizers)), len(quantizers), loss_reduction=group_loss)
        self.codebook_sizes = tuple(q.codebook_size for q in self.quantizers)
        self.codebook_size = max(self.codebook_sizes)

    def get_codebook(self) -> torch.Tensor:
        """``[G, K, d]`` when every group has K codes; otherwise read ``quantizers[g].get_codebook()``."""
        if len(set(self.codebook_sizes)) > 1:
            raise ValueError(f"the groups have codebooks of different sizes {self.codebook_sizes}: read quantizers[g].get_codebook()")
        return super().get_codebook()

    def _group_stats(self, indices, mask, dead):
        stats = super()._group_stats(indices, mask, dead)
        stats.usage = stats.usage * self.codebook_size / torch.tensor(self.codebook_sizes, device=stats.usage.device)
        return stats

    def check_indices(self, indices: torch.Tensor, latent_ndim: int) -> None:
        super().check_indices(indices, latent_ndim)
        highest = indices.movedim(1, 0).reshape(self.num_groups, -1).amax(1).tolist()
        for group, (high, size) in enumerate(zip(highest, self.codebook_sizes)):
            if high >= size:
                raise ValueError(f"indices of group {group} must be in [0, {size}), got values up to {high}")
