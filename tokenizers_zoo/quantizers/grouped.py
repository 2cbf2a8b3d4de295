"""Group-wise quantization: the feature axis split into G contiguous groups, indices ``[B, G, ...]``."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from .. import distributed
from ..interfaces import Quantizer
from ..outputs import QuantizerOutput
from .stats import stack_stats, stats_from_counts

GROUP_LOSS_REDUCTIONS = ("sum", "mean")


class GroupedQuantizer(Quantizer):
    """Quantize features ``[g * d, (g + 1) * d)`` as group g, with one codebook per group (``shared=False``)
    or one codebook for every group (``shared=True``: the groups' vectors are pooled, as extra positions).

    Losses are combined over groups by ``loss_reduction`` (``"sum"``: each group's loss counts fully, as
    FQGAN's per-factor sum; ``"mean"``: their average). Codebook statistics are per group, ``[G]``.
    """

    def __init__(self, make: Callable[[], Quantizer], num_groups: int, *, shared: bool = False, loss_reduction: str = "sum"):
        super().__init__()
        if num_groups < 2:
            raise ValueError(f"a GroupedQuantizer needs at least two groups, got {num_groups}")
        if loss_reduction not in GROUP_LOSS_REDUCTIONS:
            raise ValueError(f"loss_reduction must be one of {GROUP_LOSS_REDUCTIONS}, got {loss_reduction!r}")
        self.quantizers = nn.ModuleList([make() for _ in range(1 if shared else num_groups)])
        first = self.quantizers[0]
        if first.num_groups != 1:
            raise ValueError("the quantizers of a GroupedQuantizer must have a single group each")
        self.num_groups, self.shared, self.loss_reduction = num_groups, shared, loss_reduction
        self.dim = first.dim * num_groups
        self.codebook_size = first.codebook_size

    def get_codebook(self) -> torch.Tensor:
        """``[K, d]`` when shared, else ``[G, K, d]``."""
        if self.shared:
            return self.quantizers[0].get_codebook()
        return torch.stack([q.get_codebook() for q in self.quantizers])

    def forward(self, z: torch.Tensor, mask: torch.Tensor | None = None) -> QuantizerOutput:
        if z.ndim < 2 or z.shape[1] != self.dim:
            raise ValueError(f"expected a latent with {self.dim} features on dim 1, got shape {tuple(z.shape)}")
        if self.shared:
            out = self._forward_shared(z, mask)
            quantized, indices, losses = out.quantized, out.indices, out.losses
            dead = out.stats.dead_codes.expand(self.num_groups)
            scale = self.num_groups if self.loss_reduction == "sum" else 1.0  # the shared loss is a mean over groups
        else:
            outputs = [q(part, mask) for q, part in zip(self.quantizers, z.split(self.code_dim, dim=1))]
            quantized = torch.cat([o.quantized for o in outputs], dim=1)
            indices = torch.stack([o.indices for o in outputs], dim=1)
            losses = {name: sum(o.losses[name] for o in outputs) for name in outputs[0].losses}
            dead = torch.stack([o.stats.dead_codes for o in outputs])
            scale = 1.0 if self.loss_reduction == "sum" else 1.0 / self.num_groups
        losses = {name: value * scale for name, value in losses.items()}
        return QuantizerOutput(
            quantized=quantized,
            indices=indices,
            loss=sum(losses.values()),
            stats=self._group_stats(indices, mask, dead),
            losses=losses,
        )

    def _forward_shared(self, z: torch.Tensor, mask: torch.Tensor | None) -> QuantizerOutput:
        """One codebook: ``[B, G * d, *rest]`` -> ``[B, d, G, *rest]``, so the groups become positions."""
        grouped = z.unflatten(1, (self.num_groups, self.code_dim)).movedim(2, 1)
        if mask is not None:
            mask = mask.unsqueeze(1).expand(-1, self.num_groups, *mask.shape[1:])
        out = self.quantizers[0](grouped, mask)
        return QuantizerOutput(**{**vars(out), "quantized": out.quantized.movedim(1, 2).flatten(1, 2)})

    def _group_stats(self, indices: torch.Tensor, mask: torch.Tensor | None, dead: torch.Tensor):
        """Usage and perplexity of each group's own histogram (summed over ranks while training under DDP)."""
        per_group = indices.movedim(1, -1).reshape(-1, self.num_groups)
        if mask is not None:
            per_group = per_group[mask.reshape(-1)]
        offsets = torch.arange(self.num_groups, device=indices.device) * self.codebook_size
        counts = torch.bincount((per_group + offsets).reshape(-1), minlength=self.num_groups * self.codebook_size)
        counts = counts.float().view(self.num_groups, self.codebook_size)
        if self.training and distributed.is_distributed():
            distributed.all_reduce_sum(counts)
        return stack_stats([stats_from_counts(c, d) for c, d in zip(counts, dead)])

    def indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        if self.shared:
            return self.quantizers[0].indices_to_codes(indices).movedim(1, 2).flatten(1, 2)
        return torch.cat([q.indices_to_codes(indices[:, g]) for g, q in enumerate(self.quantizers)], dim=1)
