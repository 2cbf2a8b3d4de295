"""Train the bundled ``vqgraph_cora_tiny`` tokenizer and write it into ``tokenizers_zoo/weights/vqgraph_cora_tiny``.

    OMP_NUM_THREADS=1 python benchmarks/train_vqgraph_tiny.py

Cora (``tests/data/graph/cora.npz``, largest component), the seed-0 CPF split, 30 full-batch epochs; the epoch
with the best validation accuracy is kept. Prints the metrics registered with the model.
"""

from __future__ import annotations

from pathlib import Path

import torch

import tokenizers_zoo
from tokenizers_zoo.data import cpf_split, load_cpf_npz
from tokenizers_zoo.training.graph_teacher import TeacherTrainConfig, accuracy, train_teacher

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    torch.manual_seed(0)
    graph = load_cpf_npz(ROOT / "tests" / "data" / "graph" / "cora.npz")
    split = cpf_split(graph.labels, seed=0)
    model = tokenizers_zoo.create_model("vqgraph_cora_tiny")
    fit = train_teacher(model, graph.x, graph.edge_index, graph.labels, split.train, split.val,
                        TeacherTrainConfig(lr=0.01, epochs=30, patience=30))
    with torch.no_grad():
        out = model.classify(graph.x, graph.edge_index)
    used = out.indices.unique().numel()
    print({"best_epoch": fit.best_epoch, "val_accuracy_cora_seed0": round(fit.val_accuracy, 4),
           "test_accuracy_cora_seed0": round(accuracy(out.logits, graph.labels, split.test), 4),
           "codebook_usage_cora": round(used / model.quantizer.codebook_size, 4), "codes_used_cora": used})
    model.save_pretrained(ROOT / "tokenizers_zoo" / "weights" / "vqgraph_cora_tiny")


if __name__ == "__main__":
    main()
