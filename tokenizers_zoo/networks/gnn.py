"""Graph convolutions (torch_geometric) and the MLP student of graph-to-MLP distillation (GLNN, VQGraph)."""

from __future__ import annotations

import torch
from torch import nn

GRAPH_CONVS = ("gcn", "sage")


def graph_conv(kind: str, in_features: int, out_features: int) -> nn.Module:
    """``"gcn"``: D^-1/2 (A + I) D^-1/2 X W + b (DGL ``GraphConv(norm="both")`` on a graph with self-loops);
    ``"sage"``: GraphSAGE with mean aggregation."""
    from torch_geometric.nn import GCNConv, SAGEConv

    if kind == "gcn":
        return GCNConv(in_features, out_features, cached=False)
    if kind == "sage":
        return SAGEConv(in_features, out_features, aggr="mean")
    raise ValueError(f"graph convolution must be one of {GRAPH_CONVS}, got {kind!r}")


class NodeMLP(nn.Module):
    """Per hidden layer ``Linear -> ReLU -> Dropout``, then ``Linear`` to the classes; with ``code_dim`` also a
    projection of the last hidden vector into the teacher's codebook space (VQGraph's ``MLP.linear``).

    ``forward`` returns ``(logits [N, C], projected [N, code_dim] or None)``.
    """

    def __init__(self, in_features: int, hidden: int, num_classes: int, num_layers: int = 2, dropout: float = 0.0,
                 code_dim: int | None = None):
        super().__init__()
        if num_layers < 2:
            raise ValueError(f"a student MLP needs at least 2 layers (one hidden), got {num_layers}")
        widths = [in_features] + [hidden] * (num_layers - 1)
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden, num_classes)
        self.projection = nn.Linear(hidden, code_dim) if code_dim else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        for layer in self.layers:
            x = self.dropout(torch.relu(layer(x)))
        projected = self.projection(x) if self.projection is not None else None
        return self.classifier(x), projected
