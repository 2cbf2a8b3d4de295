"""Graph files and splits: the CPF .npz reader with VQGraph's largest connected component, the Planetoid raw reader,
torch_geometric Data, the CPF per-seed split and the inductive hold-out."""

from pathlib import Path

import numpy as np
import pytest
import torch

from tokenizers_zoo.data import cpf_split, inductive_split, load_cpf_npz, load_planetoid
from tokenizers_zoo.data.graph_files import from_pyg

GRAPH = Path(__file__).parent / "data" / "graph"


@pytest.fixture(scope="module")
def cora():
    return load_cpf_npz(GRAPH / "cora.npz")


def test_cpf_cora_is_the_largest_component_vqgraph_uses(cora):
    assert cora.x.shape == (2485, 1433) and cora.x.dtype == torch.float32
    assert cora.edge_index.shape == (2, 2 * 5069) and cora.num_classes == 7
    assert set(cora.x.unique().tolist()) == {0.0, 1.0}  # binary bag of words, not normalised
    pairs = set(map(tuple, cora.edge_index.T.tolist()))
    assert all((j, i) in pairs for i, j in pairs) and all(i != j for i, j in pairs)
    whole = load_cpf_npz(GRAPH / "cora.npz", largest_component=False)
    assert whole.num_nodes == 2708


def test_cpf_split_draws_20_and_30_per_class_and_is_seeded(cora):
    split = cpf_split(cora.labels, seed=0)
    assert (split.train.numel(), split.val.numel(), split.test.numel()) == (140, 210, 2135)
    assert torch.bincount(cora.labels[split.train]).tolist() == [20] * 7
    assert torch.bincount(cora.labels[split.val]).tolist() == [30] * 7
    everything = torch.cat([split.train, split.val, split.test])
    assert everything.unique().numel() == cora.num_nodes
    again, other = cpf_split(cora.labels, seed=0), cpf_split(cora.labels, seed=1)
    assert torch.equal(again.train, split.train) and not torch.equal(other.train, split.train)
    # the first draw of the official RandomState: class 0's candidates in id order, 20 without replacement
    expected = np.random.RandomState(0).choice(np.flatnonzero(cora.labels.numpy() == 0), 20, replace=False)
    assert split.train[:20].tolist() == expected.tolist()


def test_inductive_split_holds_out_a_fifth_of_the_test_nodes(cora):
    split = cpf_split(cora.labels, seed=3)
    held = inductive_split(split, seed=3)
    assert held.test_ind.numel() == int(0.2 * 2135) and held.test_tran.numel() == 2135 - int(0.2 * 2135)
    assert not torch.isin(held.test_ind, held.observed).any()
    observed = cora.subgraph(held.observed)
    assert observed.num_nodes == 140 + 210 + held.test_tran.numel()
    assert torch.equal(observed.labels[:140], cora.labels[split.train])
    assert observed.edge_index.max() < observed.num_nodes  # edges to held-out nodes are gone
    with pytest.raises(ValueError, match="rate"):
        inductive_split(split, seed=0, rate=1.5)


def test_planetoid_raw_files_and_the_public_split():
    graph, split = load_planetoid(GRAPH / "planetoid", "cora")
    assert graph.x.shape == (2708, 1433) and graph.edge_index.shape == (2, 10556)
    assert (split.train.numel(), split.val.numel(), split.test.numel()) == (140, 500, 1000)
    component, kept = load_planetoid(GRAPH / "planetoid", "cora", largest_component=True)
    assert component.num_nodes == 2485 and kept.train.max() < 2485
    with pytest.raises(FileNotFoundError, match="ind.citeseer"):
        load_planetoid(GRAPH / "planetoid", "citeseer")


def test_torch_geometric_data_is_accepted_and_checked():
    from torch_geometric.data import Data

    data = Data(x=torch.rand(4, 3), edge_index=torch.tensor([[0, 1, 1], [1, 2, 2]]), y=torch.tensor([0, 1, 0, 1]))
    graph = from_pyg(data)
    assert graph.edge_index.tolist() == [[0, 1, 1, 2], [1, 0, 2, 1]]  # symmetric, duplicates dropped
    assert from_pyg(data, largest_component=True).num_nodes == 3
    with pytest.raises(ValueError, match="no y"):
        from_pyg(Data(x=torch.rand(2, 3), edge_index=torch.zeros(2, 0, dtype=torch.int64)))
    with pytest.raises(ValueError, match="node ids"):
        from_pyg(Data(x=torch.rand(2, 3), edge_index=torch.tensor([[0], [5]]), y=torch.tensor([0, 1])))


def test_bad_files_are_refused_by_name(tmp_path):
    with pytest.raises(FileNotFoundError, match="no graph file"):
        load_cpf_npz(tmp_path / "missing.npz")
    np.savez(tmp_path / "other.npz", something=np.zeros(3))
    with pytest.raises(ValueError, match="not a CPF graph file"):
        load_cpf_npz(tmp_path / "other.npz")
