"""Inference time of the VQGraph student MLP against its teacher GNN, on Cora and on a synthetic graph.

    OMP_NUM_THREADS=1 python benchmarks/graph_inference.py [--nodes 1000000 --degree 20 --features 256 --targets 10]

Two settings. **Whole graph**: both networks label every node at once, the GNN's most favourable case (one
sparse product per layer, no neighbour fetching). **Online**: a request names ``--targets`` random nodes (GLNN's
latency setting); the MLP reads their features, the GNN must fetch their 2-hop neighbourhood from the CSR
adjacency and run its layers there (layer 1 on the targets and their neighbours, with the degrees of the whole
graph, so its logits equal the whole-graph logits: checked on every request). Times are medians over requests.

Both networks are untrained (time does not depend on the weights) and run in eval mode without autograd. The
teacher is the VQGraph tokenizer at its official layout for the given input width (encoder width = input width,
codebook search, edge decoder, second GCN layer, classifier), the student the official 2-layer MLP (hidden 128).
Cora uses the teacher of the reproduction recipe (``recipes/vqgraph_cora.json``: width 256, 1,024 codes). The
adjacency is a sparse CSR matrix, so whole-graph message passing is a sparse-dense product rather than per-edge
messages (which would need ``E x width`` floats). Whole-graph times on Cora are medians of 5 calls after a
warm-up; on the synthetic graph one call after a warm-up of the student only. Rows go to
``benchmarks/results/graph_inference.json``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import statistics
import time
from pathlib import Path

import torch

from tokenizers_zoo.atomic import atomic_write
from tokenizers_zoo.data import load_cpf_npz
from tokenizers_zoo.models.vqgraph import VQGraph, VQGraphConfig, vqgraph_quantizer
from tokenizers_zoo.networks.gnn import NodeMLP
from tokenizers_zoo.training.vqgraph_run import inference_ms

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "graph_inference.json"


def teacher_logits(teacher: VQGraph, x: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
    """``VQGraph.classify`` on a sparse adjacency (the layers take it; the tokenizer's input check wants edge lists)."""
    quantized = teacher.quantizer(teacher.encoder(x, adjacency)).quantized
    return teacher.class_logits(quantized, adjacency)


def random_adjacency(nodes: int, degree: int, generator: torch.Generator) -> torch.Tensor:
    """A random simple undirected graph with about ``degree`` neighbours per node, as a CSR adjacency."""
    from torch_geometric.utils import to_torch_csr_tensor

    pairs = torch.randint(nodes, (2, nodes * degree // 2), generator=generator)
    pairs = pairs[:, pairs[0] != pairs[1]]
    keys = torch.cat([pairs[0] * nodes + pairs[1], pairs[1] * nodes + pairs[0]]).unique()
    return to_torch_csr_tensor(torch.stack([keys // nodes, keys % nodes]), size=(nodes, nodes), is_coalesced=True)


def neighbours(adjacency: torch.Tensor, nodes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The CSR rows of ``nodes``: ``(row position, neighbour id)`` per stored edge."""
    crow, col = adjacency.crow_indices(), adjacency.col_indices()
    counts = crow[nodes + 1] - crow[nodes]
    rows = torch.repeat_interleave(torch.arange(nodes.numel()), counts)
    starts = torch.repeat_interleave(crow[nodes] - torch.cumsum(counts, 0) + counts, counts)
    return rows, col[starts + torch.arange(rows.numel())]


def gcn_rows(conv, sources: torch.Tensor, source_ids: torch.Tensor, targets: torch.Tensor, adjacency: torch.Tensor,
             degree: torch.Tensor) -> torch.Tensor:
    """A ``GCNConv`` (self-loops, symmetric normalisation) evaluated at ``targets`` only, from the inputs ``sources``
    of the nodes ``source_ids`` (sorted, holding the targets and their neighbours)."""
    rows, cols = neighbours(adjacency, targets)
    rows = torch.cat([rows, torch.arange(targets.numel())])
    cols = torch.cat([cols, targets])
    weights = (degree[targets][rows] * degree[cols]).rsqrt()
    transformed = conv.lin(sources)[torch.searchsorted(source_ids, cols)]
    out = torch.zeros(targets.numel(), transformed.shape[1]).index_add_(0, rows, weights[:, None] * transformed)
    return out + conv.bias


def online_logits(teacher: VQGraph, x: torch.Tensor, adjacency: torch.Tensor, degree: torch.Tensor,
                  targets: torch.Tensor) -> torch.Tensor:
    """The teacher's logits at ``targets`` from their 2-hop neighbourhood (``degree``: whole-graph degree + 1)."""
    hop_1 = torch.cat([targets, neighbours(adjacency, targets)[1]]).unique()
    hop_2 = torch.cat([hop_1, neighbours(adjacency, hop_1)[1]]).unique()
    hidden = torch.relu(gcn_rows(teacher.encoder.conv, x[hop_2], hop_2, hop_1, adjacency, degree))
    edge_vectors = teacher.edge_decoder(teacher.quantizer(hidden).quantized)
    out = gcn_rows(teacher.conv_out, edge_vectors, hop_1, targets, adjacency, degree)
    return teacher.classifier(torch.relu(out))


def online_ms(teacher: VQGraph, student: NodeMLP, x: torch.Tensor, adjacency: torch.Tensor, whole_graph: torch.Tensor,
              targets: int, requests: int, generator: torch.Generator) -> tuple[float, float]:
    """Median GNN and MLP times of ``requests`` requests for ``targets`` random nodes; every GNN answer is checked
    against ``whole_graph`` logits."""
    degree = (adjacency.crow_indices().diff() + 1).float()
    gnn, mlp = [], []
    with torch.no_grad():
        for _ in range(requests + 1):  # the first request warms up
            ids = torch.randperm(x.shape[0], generator=generator)[:targets].sort().values
            started = time.perf_counter()
            logits = online_logits(teacher, x, adjacency, degree, ids)
            gnn.append(time.perf_counter() - started)
            torch.testing.assert_close(logits, whole_graph[ids], rtol=1e-4, atol=1e-4)
            started = time.perf_counter()
            student(x[ids])
            mlp.append(time.perf_counter() - started)
    return 1000 * statistics.median(gnn[1:]), 1000 * statistics.median(mlp[1:])


def timed(call):
    """``(call(), wall milliseconds)``, without autograd."""
    with torch.no_grad():
        started = time.perf_counter()
        result = call()
        return result, 1000 * (time.perf_counter() - started)


def measure(name: str, teacher: VQGraph, x: torch.Tensor, adjacency: torch.Tensor, args, repeats: int) -> list[dict]:
    """Whole-graph rows (median of ``repeats`` calls after a warm-up; one call when ``repeats`` is 1) and online rows."""
    student = NodeMLP(x.shape[1], 128, teacher.config.num_classes).eval()
    timed(lambda: student(x))  # warm-up
    whole_mlp = inference_ms(lambda: student(x)) if repeats > 1 else timed(lambda: student(x))[1]
    logits, whole_gnn = timed(lambda: teacher_logits(teacher, x, adjacency))  # also the online check's reference
    if repeats > 1:
        whole_gnn = inference_ms(lambda: teacher_logits(teacher, x, adjacency))
    online_gnn, online_mlp = online_ms(teacher, student, x, adjacency, logits, args.targets, args.requests,
                                       torch.Generator().manual_seed(1))
    graph = {"graph": name, "nodes": x.shape[0], "edges": int(adjacency.values().numel()), "features": x.shape[1],
             "teacher_width": teacher.config.code_dim, "codebook_size": teacher.quantizer.codebook_size}
    rows = [{**graph, "setting": "whole graph", "gnn_ms": round(whole_gnn, 2), "mlp_ms": round(whole_mlp, 2),
             "ratio": round(whole_gnn / whole_mlp, 1)},
            {**graph, "setting": f"online, {args.targets} nodes", "gnn_ms": round(online_gnn, 3),
             "mlp_ms": round(online_mlp, 4), "ratio": round(online_gnn / online_mlp, 1)}]
    for row in rows:
        print(row, flush=True)
    return rows


def main() -> None:
    from torch_geometric.utils import to_torch_csr_tensor

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=1_000_000)
    parser.add_argument("--degree", type=int, default=20)
    parser.add_argument("--features", type=int, default=256)
    parser.add_argument("--codebook-size", type=int, default=1024)
    parser.add_argument("--targets", type=int, default=10, help="nodes per online request")
    parser.add_argument("--requests", type=int, default=20, help="online requests timed per graph")
    args = parser.parse_args()
    torch.manual_seed(0)

    recipe = json.loads((ROOT / "recipes" / "vqgraph_cora.json").read_text())
    cora = load_cpf_npz(ROOT / "tests" / "data" / "graph" / "cora.npz")
    teacher = VQGraph(VQGraphConfig().replace(**recipe["teacher"])).eval()
    rows = measure("cora", teacher, cora.x, to_torch_csr_tensor(cora.edge_index, size=(cora.num_nodes,) * 2), args, 5)

    generator = torch.Generator().manual_seed(0)
    adjacency = random_adjacency(args.nodes, args.degree, generator)
    x = torch.rand(args.nodes, args.features, generator=generator)
    config = VQGraphConfig(in_features=args.features, num_classes=7, quantizer=vqgraph_quantizer(args.codebook_size))
    rows += measure(f"random, average degree {args.degree}", VQGraph(config).eval(), x, adjacency, args, 1)

    result = {
        "device": f"{platform.machine()} CPU, {torch.get_num_threads()} thread(s) (OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')})",
        "date": str(datetime.date.today()),
        "command": "OMP_NUM_THREADS=1 python benchmarks/graph_inference.py "
                   f"--nodes {args.nodes} --degree {args.degree} --features {args.features} --codebook-size {args.codebook_size} "
                   f"--targets {args.targets} --requests {args.requests}",
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "rows": rows,
    }
    atomic_write(RESULTS, lambda temporary: temporary.write_text(json.dumps(result, indent=2) + "\n"))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
