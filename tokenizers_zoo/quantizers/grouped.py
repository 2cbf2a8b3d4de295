"""Several independent quantizers, each on its own slice of the feature axis (indices ``[B, G, ...]``)."""

from __future__ import annotations

import torch
from torch import nn

from ..interfaces import Quantizer
from ..outputs import QuantizerOutput
from .stats import stack_stats


class GroupedQuantizer(Quantizer):
    """Split the ``dim`` features into ``len(quantizers)`` equal contiguous groups and quantize group g
    with ``quantizers[g]``. Indices get the group axis at dim 1; losses are summed over groups (named
    ``"<loss>"``, with the per-group terms as ``"<loss>/<g>"``); statistics are per group ``[G]``."""

    def __init__(self, quantizers: list[Quantizer]):
        super().__init__()
        sizes = {(q.dim, q.codebook_size, q.num_groups) for q in quantizers}
        if len(quantizers) < 2 or len(sizes) != 1:
            raise ValueError("GroupedQuantizer needs at least two quantizers with equal dim and codebook_size")
        (group_dim, codebook_size, inner_groups), = sizes
        if inner_groups != 1:
            raise ValueError("the quantizers of a GroupedQuantizer must have a single group each")
        self.quantizers = nn.ModuleList(quantizers)
        self.num_groups = len(quantizers)
        self.dim = group_dim * self.num_groups
        self.codebook_size = codebook_size

    def forward(self, z: torch.Tensor, mask: torch.Tensor | None = None) -> QuantizerOutput:
        if z.ndim < 2 or z.shape[1] != self.dim:
            raise ValueError(f"expected a latent with {self.dim} features on dim 1, got shape {tuple(z.shape)}")
        outputs = [q(part, mask) for q, part in zip(self.quantizers, z.split(self.code_dim, dim=1))]
        losses: dict[str, torch.Tensor] = {}
        for group, out in enumerate(outputs):
            for name, value in out.losses.items():
                losses[name] = losses.get(name, 0) + value
                losses[f"{name}/{group}"] = value
        return QuantizerOutput(
            quantized=torch.cat([out.quantized for out in outputs], dim=1),
            indices=torch.stack([out.indices for out in outputs], dim=1),
            loss=sum(out.loss for out in outputs),
            stats=stack_stats([out.stats for out in outputs]),
            losses=losses,
        )

    def indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        return torch.cat([q.indices_to_codes(indices[:, g]) for g, q in enumerate(self.quantizers)], dim=1)
