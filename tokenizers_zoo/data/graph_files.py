"""Node-classification graphs from files (CPF ``.npz``, Planetoid raw files, torch_geometric ``Data``) and the
VQGraph / GLNN splits: 20 train and 30 validation nodes per class drawn per seed, and the inductive hold-out.

Graphs are kept as VQGraph prepares them: unweighted, symmetric, without self-loops (the GCN layers add them),
optionally reduced to their largest connected component with the node order kept.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch


@dataclass(frozen=True)
class NodeGraph:
    """Features ``x`` ``[N, F]`` float32, undirected ``edge_index`` ``[2, E]`` int64 (both directions, no
    self-loops) and integer ``labels`` ``[N]``."""

    x: torch.Tensor
    edge_index: torch.Tensor
    labels: torch.Tensor

    @property
    def num_nodes(self) -> int:
        return self.x.shape[0]

    @property
    def num_classes(self) -> int:
        return int(self.labels.max()) + 1

    def subgraph(self, nodes: torch.Tensor) -> "NodeGraph":
        """The graph induced by ``nodes`` (int64 ids), renumbered 0..len(nodes)-1 in the given order."""
        position = torch.full((self.num_nodes,), -1, dtype=torch.int64)
        position[nodes] = torch.arange(nodes.numel())
        kept = (position[self.edge_index] >= 0).all(0)
        return NodeGraph(self.x[nodes], position[self.edge_index[:, kept]], self.labels[nodes])


@dataclass(frozen=True)
class Split:
    """Node ids of the training, validation and test sets."""

    train: torch.Tensor
    val: torch.Tensor
    test: torch.Tensor


@dataclass(frozen=True)
class InductiveSplit:
    """GLNN's production setting: ``observed`` = train + val + ``test_tran`` nodes (in that order), the graph
    the teacher trains on; ``test_ind`` are test nodes (and their edges) it never sees."""

    split: Split
    test_tran: torch.Tensor
    test_ind: torch.Tensor

    @property
    def observed(self) -> torch.Tensor:
        return torch.cat([self.split.train, self.split.val, self.test_tran])


def load_cpf_npz(path: str | os.PathLike, largest_component: bool = True) -> NodeGraph:
    """A graph in the CPF / gnn-benchmark ``.npz`` layout (``adj_*``, ``attr_*`` CSR arrays and ``labels``),
    standardised as VQGraph does: unweighted, symmetric, self-loops removed, largest connected component."""
    import scipy.sparse as sp

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no graph file at {path}")
    with np.load(path, allow_pickle=False) as arrays:  # numeric arrays only: never unpickle a data file
        missing = sorted({"adj_data", "adj_indices", "adj_indptr", "adj_shape", "labels"} - set(arrays.files))
        if missing:
            raise ValueError(f"{path} is not a CPF graph file: it lacks {', '.join(missing)}")
        adjacency = sp.csr_matrix((arrays["adj_data"], arrays["adj_indices"], arrays["adj_indptr"]), shape=tuple(arrays["adj_shape"]))
        if "attr_data" in arrays.files:
            attributes = sp.csr_matrix((arrays["attr_data"], arrays["attr_indices"], arrays["attr_indptr"]), shape=tuple(arrays["attr_shape"]))
            features = attributes.toarray()
        elif "attr_matrix" in arrays.files:
            features = np.asarray(arrays["attr_matrix"])
        else:
            raise ValueError(f"{path} holds no node attributes (attr_data... or attr_matrix)")
        labels = np.asarray(arrays["labels"])
    adjacency = adjacency.tocoo()
    edges = torch.from_numpy(np.stack([adjacency.row, adjacency.col]).astype(np.int64))
    graph = _standardized(torch.from_numpy(features.astype(np.float32)), edges, torch.from_numpy(labels.astype(np.int64)))
    return largest_connected_component(graph) if largest_component else graph


def load_planetoid(folder: str | os.PathLike, name: str, largest_component: bool = False) -> tuple[NodeGraph, Split]:
    """The Planetoid raw files ``ind.<name>.*`` in ``folder`` (read by torch_geometric, nothing downloaded) and
    their public split (Kipf & Welling). With ``largest_component`` the split keeps only the component's nodes."""
    from torch_geometric.io import read_planetoid_data

    folder = Path(folder)
    needed = [folder / f"ind.{name.lower()}.{part}" for part in ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")]
    missing = [str(file) for file in needed if not file.is_file()]
    if missing:
        raise FileNotFoundError(f"Planetoid files missing: {', '.join(missing)}")
    data = read_planetoid_data(str(folder), name.lower())
    graph = _standardized(data.x.float(), data.edge_index, data.y)
    split = Split(*(mask.nonzero().flatten() for mask in (data.train_mask, data.val_mask, data.test_mask)))
    if not largest_component:
        return graph, split
    nodes = component_nodes(graph)
    return graph.subgraph(nodes), _restricted(split, nodes, graph.num_nodes)


def from_pyg(data: Any, largest_component: bool = False) -> NodeGraph:
    """A torch_geometric ``Data`` with ``x``, ``edge_index`` and ``y``, standardised like the files."""
    missing = [name for name in ("x", "edge_index", "y") if getattr(data, name, None) is None]
    if missing:
        raise ValueError(f"the graph has no {', '.join(missing)}: node classification needs x, edge_index and y")
    graph = _standardized(data.x.float(), data.edge_index, data.y)
    return largest_connected_component(graph) if largest_component else graph


def component_nodes(graph: NodeGraph) -> torch.Tensor:
    """Ids, ascending, of the nodes of the largest connected component."""
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    rows, cols = graph.edge_index.numpy()
    adjacency = sp.coo_matrix((np.ones(rows.size), (rows, cols)), shape=(graph.num_nodes, graph.num_nodes))
    _, component = connected_components(adjacency, directed=False)
    largest = np.bincount(component).argmax()
    return torch.from_numpy(np.flatnonzero(component == largest).astype(np.int64))


def largest_connected_component(graph: NodeGraph) -> NodeGraph:
    return graph.subgraph(component_nodes(graph))


def cpf_split(labels: torch.Tensor, seed: int, train_per_class: int = 20, val_per_class: int = 30) -> Split:
    """GLNN / VQGraph ``get_train_val_test_split``: with ``np.random.RandomState(seed)``, ``train_per_class``
    nodes of each class (drawn from its nodes in id order), then ``val_per_class`` more; the rest is test."""
    labels_np = labels.numpy()
    classes = int(labels_np.max()) + 1
    state = np.random.RandomState(seed)

    def draw(per_class: int, forbidden: np.ndarray) -> np.ndarray:
        picks = []
        for label in range(classes):
            candidates = np.flatnonzero(labels_np == label)
            candidates = candidates[~np.isin(candidates, forbidden)]
            if candidates.size < per_class:
                raise ValueError(f"class {label} has {candidates.size} nodes left, fewer than the {per_class} to draw")
            picks.append(state.choice(candidates, per_class, replace=False))
        return np.concatenate(picks)

    train = draw(train_per_class, np.empty(0, dtype=np.int64))
    val = draw(val_per_class, train)
    test = np.setdiff1d(np.arange(labels_np.size), np.concatenate([train, val]))
    return Split(*(torch.from_numpy(ids.astype(np.int64)) for ids in (train, val, test)))


def inductive_split(split: Split, seed: int, rate: float = 0.2) -> InductiveSplit:
    """GLNN ``graph_split``: ``int(rate * len(test))`` test nodes, drawn by ``torch.randperm`` after seeding,
    are held out (``test_ind``); the others stay observed (``test_tran``)."""
    if not 0.0 < rate < 1.0:
        raise ValueError(f"the held-out rate must be in (0, 1), got {rate}")
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(split.test.numel(), generator=generator)
    held_out = int(rate * split.test.numel())
    return InductiveSplit(split, split.test[order[held_out:]], split.test[order[:held_out]])


def _standardized(x: torch.Tensor, edge_index: torch.Tensor, labels: torch.Tensor) -> NodeGraph:
    """Unweighted, symmetric, without self-loops or duplicate edges; checks the shapes."""
    from .graph import _check

    _check(x, edge_index, {"labels": labels})
    if labels.ndim != 1 or labels.dtype != torch.int64 or (labels.numel() and int(labels.min()) < 0):
        raise ValueError(f"labels must be non-negative int64 class ids [N], got {labels.dtype} {tuple(labels.shape)}")
    both = torch.cat([edge_index, edge_index.flip(0)], dim=1)
    both = both[:, both[0] != both[1]]
    both = torch.unique(both, dim=1)
    return NodeGraph(x.contiguous(), both, labels)


def _restricted(split: Split, nodes: torch.Tensor, num_nodes: int) -> Split:
    position = torch.full((num_nodes,), -1, dtype=torch.int64)
    position[nodes] = torch.arange(nodes.numel())
    return Split(*(position[ids][position[ids] >= 0] for ids in (split.train, split.val, split.test)))
