"""Graph tokenizers: node features ``[N, F]`` plus ``edge_index`` ``[2, E]`` in, one code per node ``[N]`` out."""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from .keywords import Keywords
from .tokenizer import Tokenizer


class GraphTokenizer(Tokenizer):
    """Base of the graph families. ``edge_index`` is required by ``encode``/``forward`` and passed on to the
    encoder and decoder (``decode(indices, edge_index=...)``)."""

    latent_ndim: ClassVar[int] = 2
    keywords: ClassVar[Keywords] = Keywords(encode=("edge_index",), decode=("edge_index",), train=("edge_index",))

    def validate_input(self, x: torch.Tensor, context: dict[str, Any]) -> None:
        self.input_spec.validate(x, context.get("edge_index"))
        super().validate_input(x, context)
