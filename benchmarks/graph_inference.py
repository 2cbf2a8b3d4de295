"""Inference time of the VQGraph student MLP against its teacher GNN, on Cora and on a synthetic graph.

    OMP_NUM_THREADS=1 python benchmarks/graph_inference.py [--nodes 1000000 --degree 20 --features 256]

Both networks are untrained (time does not depend on the weights) and run in eval mode without autograd on the
whole graph: the teacher is the VQGraph tokenizer at its official layout for the given input width (encoder width =
input width, codebook search, edge decoder, second GCN layer, classifier), the student the official 2-layer MLP
(hidden 128). Cora uses the teacher of the reproduction recipe (``recipes/vqgraph_cora.json``: width 256, 1,024
codes). On the synthetic graph (random undirected edges, average degree ``--degree``) the adjacency is a sparse
CSR matrix, so message passing is a sparse-dense product rather than per-edge messages (which would need
``E x width`` floats). Cora times are medians of 5 calls after a warm-up; synthetic-graph times are one call
after a warm-up of the student only. Rows go to ``benchmarks/results/graph_inference.json``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
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
    """A random undirected graph with about ``degree`` neighbours per node, as a transposed CSR adjacency."""
    from torch_geometric.utils import to_torch_csr_tensor

    pairs = torch.randint(nodes, (2, nodes * degree // 2), generator=generator)
    pairs = pairs[:, pairs[0] != pairs[1]]
    edges = torch.cat([pairs, pairs.flip(0)], dim=1)
    return to_torch_csr_tensor(edges.flip(0), size=(nodes, nodes))


def once_ms(call) -> float:
    with torch.no_grad():
        started = time.perf_counter()
        call()
        return 1000 * (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=1_000_000)
    parser.add_argument("--degree", type=int, default=20)
    parser.add_argument("--features", type=int, default=256)
    parser.add_argument("--codebook-size", type=int, default=1024)
    args = parser.parse_args()
    torch.manual_seed(0)
    rows = []

    recipe = json.loads((ROOT / "recipes" / "vqgraph_cora.json").read_text())
    cora = load_cpf_npz(ROOT / "tests" / "data" / "graph" / "cora.npz")
    teacher = VQGraph(VQGraphConfig().replace(**recipe["teacher"])).eval()
    student = NodeMLP(cora.x.shape[1], 128, 7).eval()
    gnn = inference_ms(lambda: teacher.classify(cora.x, cora.edge_index))
    mlp = inference_ms(lambda: student(cora.x))
    rows.append({"graph": "cora", "nodes": cora.num_nodes, "edges": cora.edge_index.shape[1], "features": cora.x.shape[1],
                 "teacher_width": teacher.config.code_dim, "codebook_size": teacher.quantizer.codebook_size,
                 "gnn_ms": round(gnn, 2), "mlp_ms": round(mlp, 2), "ratio": round(gnn / mlp, 1)})
    print(rows[-1], flush=True)

    generator = torch.Generator().manual_seed(0)
    adjacency = random_adjacency(args.nodes, args.degree, generator)
    x = torch.rand(args.nodes, args.features, generator=generator)
    config = VQGraphConfig(in_features=args.features, num_classes=7, quantizer=vqgraph_quantizer(args.codebook_size))
    teacher = VQGraph(config).eval()
    student = NodeMLP(args.features, 128, 7).eval()
    once_ms(lambda: student(x))
    mlp = once_ms(lambda: student(x))
    gnn = once_ms(lambda: teacher_logits(teacher, x, adjacency))
    rows.append({"graph": f"random, average degree {args.degree}", "nodes": args.nodes, "edges": int(adjacency.values().numel()),
                 "features": args.features, "teacher_width": config.code_dim, "codebook_size": args.codebook_size,
                 "gnn_ms": round(gnn, 1), "mlp_ms": round(mlp, 1), "ratio": round(gnn / mlp, 1)})
    print(rows[-1], flush=True)

    result = {
        "device": f"{platform.machine()} CPU, {torch.get_num_threads()} thread(s) (OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')})",
        "date": str(datetime.date.today()),
        "command": "OMP_NUM_THREADS=1 python benchmarks/graph_inference.py "
                   f"--nodes {args.nodes} --degree {args.degree} --features {args.features} --codebook-size {args.codebook_size}",
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "rows": rows,
    }
    atomic_write(RESULTS, lambda temporary: temporary.write_text(json.dumps(result, indent=2) + "\n"))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
