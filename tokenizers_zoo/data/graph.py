"""A whole graph (node features, edges, per-node tensors) as a dataset of one item."""

from __future__ import annotations

from typing import Any

import torch


def collate_graph(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The single graph of a batch, unchanged: a graph is passed whole, never stacked."""
    if len(items) != 1:
        raise ValueError(f"a graph is passed whole: expected a batch of 1 item, got {len(items)}")
    return items[0]


class GraphDataset(torch.utils.data.Dataset):
    """One graph as the single item ``{"x": [N, F], "edge_index": [2, E], **node_tensors}``.

    ``node_tensors`` (e.g. ``labels``, ``train_mask``) have one row per node; they reach the model as keyword
    arguments.
    """

    collate = staticmethod(collate_graph)

    def __init__(self, x: torch.Tensor, edge_index: torch.Tensor, **node_tensors: torch.Tensor):
        _check(x, edge_index, node_tensors)
        self.item = {"x": x, "edge_index": edge_index, **node_tensors}

    @classmethod
    def from_pyg(cls, data: Any, **fields: str) -> GraphDataset:
        """From a torch_geometric ``Data``: ``x``, ``edge_index`` and renamed attributes, e.g. ``labels="y"``."""
        wanted = {"x": "x", "edge_index": "edge_index", **fields}
        missing = sorted({attribute for attribute in wanted.values() if getattr(data, attribute, None) is None})
        if missing:
            raise ValueError(f"the graph has no {', '.join(missing)}; its attributes: {', '.join(sorted(data.keys()))}")
        return cls(**{name: getattr(data, attribute) for name, attribute in wanted.items()})

    def __len__(self) -> int:
        return 1

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if index not in (0, -1):
            raise IndexError(f"a GraphDataset holds one graph (index 0), got index {index}")
        return self.item


def _check(x: Any, edge_index: Any, node_tensors: dict[str, Any]) -> None:
    if not (isinstance(x, torch.Tensor) and x.ndim == 2 and x.is_floating_point()):
        raise ValueError(f"x must be float node features [N, F], got {_describe(x)}")
    nodes = x.shape[0]
    is_pairs = isinstance(edge_index, torch.Tensor) and edge_index.ndim == 2 and edge_index.shape[0] == 2
    if not (is_pairs and edge_index.dtype == torch.int64):
        raise ValueError(f"edge_index must be int64 [2, E], got {_describe(edge_index)}")
    if edge_index.numel() and (edge_index.min() < 0 or edge_index.max() >= nodes):
        raise ValueError(
            f"edge_index has node ids from {int(edge_index.min())} to {int(edge_index.max())}, "
            f"but x has {nodes} nodes (ids 0..{nodes - 1})"
        )
    for name, value in node_tensors.items():
        if not (isinstance(value, torch.Tensor) and value.ndim >= 1 and value.shape[0] == nodes):
            raise ValueError(f"{name} must be a tensor with one row per node ({nodes}), got {_describe(value)}")


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"{value.dtype} tensor of shape {tuple(value.shape)}"
    return type(value).__name__
