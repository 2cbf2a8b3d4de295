"""Typed outputs. Each is a dataclass that also indexes like a dict (``out["indices"]``) and a tuple (``out[1]``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Iterator

import torch


class ModelOutput:
    """Base of the output dataclasses: attribute, key and position access, and tuple unpacking."""

    def __getitem__(self, key: str | int | slice) -> Any:
        if isinstance(key, str):
            if key not in self.keys():
                raise KeyError(f"{type(self).__name__} has no field {key!r}; fields: {self.keys()}")
            return getattr(self, key)
        return self.to_tuple()[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self.to_tuple())

    def keys(self) -> list[str]:
        return [f.name for f in dataclasses.fields(self)]

    def to_tuple(self) -> tuple:
        return tuple(getattr(self, name) for name in self.keys())


@dataclass
class CodebookStats(ModelOutput):
    """Codebook health for one batch (tensors of shape ``[]``, or ``[G]`` for grouped quantizers).

    usage: fraction of the codes used by this batch. perplexity: exp of the entropy of the batch's code
    histogram (equals the number of codes used if they were used equally). dead_codes: codes whose running
    usage count fell below the quantizer's dead-code threshold.
    """

    usage: torch.Tensor
    perplexity: torch.Tensor
    dead_codes: torch.Tensor


@dataclass
class QuantizerOutput(ModelOutput):
    """What a quantizer returns: straight-through quantized latents (same layout as its input), int64
    indices, the sum of its losses, codebook statistics, the named (weighted) losses that sum to ``loss``,
    and ``extras``: tensors a model or objective may need (e.g. per-factor latents)."""

    quantized: torch.Tensor
    indices: torch.Tensor
    loss: torch.Tensor
    stats: CodebookStats
    losses: dict[str, torch.Tensor] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass
class EncodeOutput(ModelOutput):
    """``Tokenizer.encode``: indices in the modality's layout, the quantized and pre-quantization latents,
    and, for variable-length inputs (audio), the number of valid tokens per item."""

    indices: torch.Tensor
    quantized: torch.Tensor
    latents: torch.Tensor
    lengths: torch.Tensor | None = None


@dataclass
class TokenizerOutput(ModelOutput):
    """``Tokenizer.forward`` (training): reconstruction, indices, total loss, the named weighted losses that
    sum to it, codebook stats, and ``extras``: what else the model computed that losses or objectives read
    (always ``latents`` and ``quantized``; plus e.g. class logits or per-factor latents)."""

    reconstruction: torch.Tensor
    indices: torch.Tensor
    loss: torch.Tensor
    losses: dict[str, torch.Tensor]
    stats: CodebookStats
    extras: dict[str, Any] = field(default_factory=dict)
