"""Graph tokenizers: node features ``[N, F]`` plus ``edge_index`` ``[2, E]`` in, one code per node ``[N]`` out."""

from __future__ import annotations

from typing import ClassVar

from .tokenizer import Tokenizer


class GraphTokenizer(Tokenizer):
    """Base of the graph families. ``edge_index`` is required by ``encode``/``forward`` and passed on to the
    encoder and decoder (``decode(indices, edge_index=...)``)."""

    latent_ndim: ClassVar[int] = 2
    model_context_keys: ClassVar[tuple[str, ...]] = ("edge_index",)
