"""VQGraph (YangLing0818/VQGraph, ICLR 2024, arXiv 2308.02117): a structure-aware node tokenizer, the teacher
of its graph-to-MLP distillation (:mod:`tokenizers_zoo.training.distillation`).

As the official two-layer teacher (``models.py``, class ``GCN``; its ``SAGE`` class is the same network):

    h = dropout(relu(conv_1(x)))                       encoder, width ``hidden_dim`` (official: = in_features)
    q = VQ(h)                                          cosine codebook, EMA (decay 0.8), commitment 0.25
    node = node_decoder(q)      "node"  = MSE(node, h)                        weight 1e-3
    edge = edge_decoder(q)      "edge"  = sqrt(MSE(A + I, minmax(edge edge^T)))  weight 0.03
    logits = classifier(relu(conv_2(edge)))   "classification" = NLL on ``train_mask`` nodes   weight 1

``encode(x, edge_index=...)`` gives one code per node ``[N]``; ``decode(indices, edge_index=...)`` the node
decoder's reconstruction ``[N, hidden_dim]`` of the encoder output (what the official node loss compares, so
there is no loss against ``x``: the ``reconstruction`` term is identically 0). Differences from the official
code: the codebook is the zoo's VQ (the vectors are l2-normalised before the straight-through estimator and the
commitment loss, the EMA averages normalised vectors with the zoo's bias-free statistics); ``conv="sage"`` is a
real GraphSAGE layer, whereas the official ``SAGE`` teacher uses ``GraphConv`` on sampled blocks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ConfigError, check_positive
from ..interfaces import Decoder, Encoder
from ..networks.gnn import GRAPH_CONVS, graph_conv
from ..outputs import ModelOutput, TokenizerOutput
from ..quantizers import build_quantizer
from ..registry import ModelInfo, register_model
from ..specs import GraphSpec
from .graph import GraphTokenizer
from .keywords import Keywords
from .tokenizer import TokenizerConfig


def vqgraph_quantizer(codebook_size: int = 5000) -> dict[str, Any]:
    """The official ``VectorQuantize(decay=0.8, commitment_weight=0.25, use_cosine_sim=True)`` as a config entry."""
    return {"type": "vq", "codebook_size": codebook_size, "metric": "cosine", "ema": True, "decay": 0.8, "beta": 0.25}


@dataclass
class VQGraphConfig(TokenizerConfig):
    """Input features and classes, the encoder width ``hidden_dim`` (``None``: the input width, as official),
    ``out_hidden`` (the second convolution, official yaml ``hidden_dim``: 64 for Cora), the convolution kind,
    dropout and the codebook; ``loss_weights`` default to the official ``lamb_node`` / ``lamb_edge``."""

    in_features: int = 1433
    num_classes: int = 7
    hidden_dim: int | None = None
    out_hidden: int = 64
    conv: str = "gcn"
    dropout: float = 0.8
    quantizer: dict[str, Any] = field(default_factory=vqgraph_quantizer)
    reconstruction_loss: str = "mse"
    loss_weights: dict[str, float] = field(default_factory=lambda: {"node": 1e-3, "edge": 0.03})

    def validate(self) -> None:
        check_positive(self, "in_features", "num_classes", "out_hidden")
        if self.hidden_dim is not None and self.hidden_dim < 1:
            raise ConfigError(f"hidden_dim must be positive or null (= in_features), got {self.hidden_dim}")
        if self.conv not in GRAPH_CONVS:
            raise ConfigError(f"conv must be one of {GRAPH_CONVS}, got {self.conv!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        super().validate()

    @property
    def code_dim(self) -> int:
        return self.hidden_dim or self.in_features

    def input_spec(self) -> GraphSpec:
        return GraphSpec(num_features=self.in_features)


@dataclass
class TeacherOutput(ModelOutput):
    """The teacher on a graph: class ``logits`` ``[N, C]``, encoder output ``latents`` ``[N, D]`` (what the
    codebook sees) and node codes ``indices`` ``[N]``."""

    logits: torch.Tensor
    latents: torch.Tensor
    indices: torch.Tensor


class GraphConvEncoder(Encoder):
    """``dropout(relu(conv(x, edge_index)))``."""

    def __init__(self, conv: str, in_features: int, out_features: int, dropout: float):
        super().__init__()
        self.latent_channels = out_features
        self.conv = graph_conv(conv, in_features, out_features)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, **context) -> torch.Tensor:
        return self.dropout(torch.relu(self.conv(x, edge_index)))


class LinearDecoder(Decoder):
    """One linear layer per node (the structure enters through the codes)."""

    def __init__(self, features: int):
        super().__init__()
        self.linear = nn.Linear(features, features)

    def forward(self, quantized: torch.Tensor, **context) -> torch.Tensor:
        return self.linear(quantized)

    def last_layer(self) -> torch.Tensor:
        return self.linear.weight


class VQGraph(GraphTokenizer):
    """The VQGraph teacher as a graph tokenizer (see the module docstring for the network and its losses)."""

    architecture = "vqgraph"
    config_class = VQGraphConfig
    keywords = GraphTokenizer.keywords | Keywords(train=("labels", "train_mask"))
    loss_names = ("node", "edge", "classification")

    def __init__(self, config: VQGraphConfig):
        super().__init__(config)
        width = config.code_dim
        self.encoder = GraphConvEncoder(config.conv, config.in_features, width, config.dropout)
        self.quantizer = build_quantizer(config.quantizer, width)
        self.decoder = LinearDecoder(width)  # the node decoder (official decoder_2)
        self.edge_decoder = nn.Linear(width, width)  # official decoder_1
        self.conv_out = graph_conv(config.conv, width, config.out_hidden)
        self.classifier = nn.Linear(config.out_hidden, config.num_classes)

    def class_logits(self, quantized: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        """Classes from quantized node vectors: the second convolution reads the edge decoder's output."""
        return self.classifier(torch.relu(self.conv_out(self.edge_decoder(quantized), edge_index)))

    def classify(self, x: torch.Tensor, edge_index: torch.Tensor) -> TeacherOutput:
        """Logits, latents and codes of every node (run in eval mode for the deterministic teacher)."""
        encoded = self.encode(x, edge_index=edge_index)
        return TeacherOutput(self.class_logits(encoded.quantized, edge_index), encoded.latents, encoded.indices)

    def reconstruction_loss(self, reconstruction: torch.Tensor, x: torch.Tensor, **context) -> torch.Tensor:
        """Nothing is compared with ``x``: the node decoder reconstructs the encoder output (loss ``"node"``)."""
        return reconstruction.new_zeros(())

    def extra_losses(self, x: torch.Tensor, out: TokenizerOutput, edge_index: torch.Tensor, labels: torch.Tensor | None = None,
                     train_mask: torch.Tensor | None = None, **context) -> dict[str, torch.Tensor]:
        """``node``, ``edge`` and, given ``labels`` and ``train_mask``, ``classification``; the logits go to
        ``out.extras["logits"]``."""
        quantized = out.extras["quantized"]
        edge_vectors = self.edge_decoder(quantized)
        losses = {
            "node": F.mse_loss(out.reconstruction, out.extras["latents"]),
            "edge": edge_reconstruction_loss(edge_vectors, edge_index),
        }
        logits = self.classifier(torch.relu(self.conv_out(edge_vectors, edge_index)))
        out.extras["logits"] = logits
        if (labels is None) != (train_mask is None):
            raise ValueError("the classification loss needs both labels and train_mask (or neither)")
        if labels is not None:
            if train_mask.dtype != torch.bool or train_mask.shape != labels.shape or labels.shape != logits.shape[:1]:
                raise ValueError(f"labels [N] and a bool train_mask [N] expected for {logits.shape[0]} nodes, got "
                                 f"{tuple(labels.shape)} and {train_mask.dtype} {tuple(train_mask.shape)}")
            losses["classification"] = F.cross_entropy(logits[train_mask], labels[train_mask])
        return losses


def edge_reconstruction_loss(edge_vectors: torch.Tensor, edge_index: torch.Tensor, rows_per_chunk: int = 1024) -> torch.Tensor:
    """``sqrt(MSE(A + I, minmax(S)))`` with ``S = E E^T`` over all ``N x N`` node pairs (official ``L_edge``).

    The same value and gradient as the dense formula without holding S: ``max S`` is the largest ``|e_i|^2``
    (Cauchy-Schwarz), ``min S`` is found chunk by chunk without gradient and re-evaluated at its pair, and the
    sums of ``S^2``, ``S`` and ``S`` over the edges come from ``E^T E``, ``sum_i e_i`` and the edge list. Time
    ``O(N^2 D)`` for the minimum (forward only), memory ``O(rows_per_chunk * N)``.
    """
    nodes = edge_vectors.shape[0]
    vectors = edge_vectors.double()
    pairs = edge_index[:, edge_index[0] != edge_index[1]]
    keys = torch.unique(pairs[0] * nodes + pairs[1])
    edges = torch.stack([keys // nodes, keys % nodes])
    low = _smallest_pair_product(vectors, rows_per_chunk)
    high = vectors.square().sum(1).max()
    span = (high - low).clamp_min(torch.finfo(torch.float32).tiny)
    gram = vectors.T @ vectors
    total = vectors.sum(0)
    sum_square = gram.square().sum() - 2 * low * total.square().sum() + nodes**2 * low.square()
    on_pattern = vectors.square().sum() + (vectors[edges[0]] * vectors[edges[1]]).sum()
    pattern_size = nodes + edges.shape[1]
    squared_error = sum_square / span**2 - 2 * (on_pattern - pattern_size * low) / span + pattern_size
    return (squared_error.clamp_min(0) / nodes**2).sqrt().to(edge_vectors.dtype)


def _smallest_pair_product(vectors: torch.Tensor, rows_per_chunk: int) -> torch.Tensor:
    """``min_ij e_i . e_j`` (differentiable through the minimising pair only, as ``min`` over the dense matrix)."""
    with torch.no_grad():
        best, pair = None, (0, 0)
        for start in range(0, vectors.shape[0], rows_per_chunk):
            block = vectors[start:start + rows_per_chunk] @ vectors.T
            flat = int(block.argmin())
            value = block.view(-1)[flat]
            if best is None or value < best:
                best, pair = value, (start + flat // vectors.shape[0], flat % vectors.shape[0])
    return vectors[pair[0]] @ vectors[pair[1]]


TINY_CONFIG = VQGraphConfig(hidden_dim=128, dropout=0.5, quantizer=vqgraph_quantizer(256))

register_model(
    ModelInfo(
        name="vqgraph_cora_tiny",
        architecture="vqgraph",
        modality="graph",
        description=(
            "A small VQGraph teacher trained by the zoo on Cora (CPF largest component, 2,485 nodes, seed-0 split of "
            "20/30 labelled nodes per class): GCN encoder of width 128 (the official width is the input's, 1,433), "
            "256 cosine EMA codes, 30 epochs at lr 0.01 and dropout 0.5 (benchmarks/train_vqgraph_tiny.py). "
            "For tests and demos, not research results."
        ),
        license="apache-2.0",
        codebook_size=256,
        input_spec=TINY_CONFIG.input_spec(),
        tokens_per_item=1,
        paper="VQGraph: Rethinking Graph Representation Space for Bridging GNNs and MLPs",
        paper_url="https://arxiv.org/abs/2308.02117",
        official_repo="https://github.com/YangLing0818/VQGraph",
        weights="bundled:vqgraph_cora_tiny",
        datasets=("cora",),
        metrics={  # benchmarks/train_vqgraph_tiny.py: node classification of the teacher, codes of all 2,485 nodes
            "test_accuracy_cora_seed0": 0.7794,
            "val_accuracy_cora_seed0": 0.7762,
            "codebook_usage_cora": 0.2578,
        },
    ),
    TINY_CONFIG,
)
