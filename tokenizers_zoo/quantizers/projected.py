"""A frozen code table mapped through a trainable linear layer: the shape of SimVQ and VQGAN-LC.

SimVQ (arXiv 2411.02038) keeps a frozen Gaussian basis ``[K, d]`` and learns ``W``: codes ``= C W^T + b``, so
every code moves with every gradient step and none collapses. VQGAN-LC (arXiv 2406.11837) keeps a frozen
table of 100,000 image-feature centroids ``[N, 768]`` and learns a projector to a small code dimension.
"""

from __future__ import annotations

import torch
from torch import nn

from .registry import register_quantizer
from .vq import VectorQuantizer


@register_quantizer("projected")
class ProjectedQuantizer(VectorQuantizer):
    """Codes = ``projection(table)``: a frozen ``[K, table_dim]`` table (a buffer, never written) through a
    trainable ``Linear(table_dim, dim)``. The codebook loss trains the projection.

    Args:
        table_dim: width of the stored table (default ``dim``).
        bias: whether the projection has a bias.
        **options: those of :class:`VectorQuantizer`, except EMA, k-means init and dead-code restarts,
            which would overwrite the frozen table and are refused.
    """

    table_trainable = False

    def __init__(self, dim: int, codebook_size: int, *, table_dim: int | None = None, bias: bool = True, **options):
        self.table_dim = dim if table_dim is None else table_dim
        if self.table_dim < 1:
            raise ValueError(f"table_dim must be positive, got {self.table_dim}")
        super().__init__(dim, codebook_size, **options)
        self.projection = nn.Linear(self.table_dim, dim, bias=bias)

    def new_table(self) -> torch.Tensor:
        """A frozen Gaussian basis ``[K, table_dim]`` with rows of about unit norm."""
        return torch.randn(self.codebook_size, self.table_dim) * self.table_dim**-0.5

    def project(self, table: torch.Tensor) -> torch.Tensor:
        bias = self.projection.bias
        return nn.functional.linear(table, self.projection.weight.float(), None if bias is None else bias.float())
