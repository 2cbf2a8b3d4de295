"""Audio tokenizers: mono ``[B, T]`` with optional per-item ``lengths``, indices ``[B, T']`` out."""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from ..outputs import EncodeOutput
from .keywords import Keywords
from .tokenizer import Tokenizer, lengths_to_mask


class AudioTokenizer(Tokenizer):
    """Base of the audio families. ``encode(audio, lengths=None, sample_rate=None, chunk_size=None)``.

    ``lengths`` (samples per item) masks padding out of the quantizer's losses, updates and statistics
    and of the reconstruction loss; ``sample_rate``, when given, must equal the model's; ``chunk_size``
    (samples, a multiple of the hop) encodes long inputs piece by piece to bound memory. Subclasses take
    ``[B, T]`` in ``encode_latents`` and return ``[B, T]`` from ``decode_latents``.
    """

    latent_ndim: ClassVar[int] = 3
    keywords: ClassVar[Keywords] = Keywords(encode=("lengths", "sample_rate", "chunk_size"), train=("lengths",))

    def validate_input(self, x: torch.Tensor, context: dict[str, Any]) -> None:
        self.input_spec.validate(x, context.get("lengths"), context.get("sample_rate"))
        super().validate_input(x, context)

    def token_lengths(self, context: dict[str, Any]) -> torch.Tensor | None:
        lengths = context.get("lengths")
        return None if lengths is None else self.input_spec.num_tokens(lengths.to(torch.int64))

    def reconstruction_loss(self, reconstruction, x, lengths=None, **context) -> torch.Tensor:
        if lengths is None:
            return super().reconstruction_loss(reconstruction, x)
        mask = lengths_to_mask(lengths.to(x.device), x.shape[-1])
        return super().reconstruction_loss(reconstruction[mask], x[mask])

    def encode(self, audio: torch.Tensor, **context) -> EncodeOutput:
        chunk_size = context.get("chunk_size")
        if chunk_size is None:
            return super().encode(audio, **context)
        self.keywords.check("encode", context, f"{type(self).__name__}.encode")
        hop = self.input_spec.hop_length
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < hop or chunk_size % hop:
            raise ValueError(f"chunk_size must be a positive multiple of the hop length {hop}, got {chunk_size!r}")
        self.validate_input(audio, context)
        pieces = [super(AudioTokenizer, self).encode(piece) for piece in audio.split(chunk_size, dim=1)]
        return EncodeOutput(
            indices=torch.cat([p.indices for p in pieces], dim=-1),
            quantized=torch.cat([p.quantized for p in pieces], dim=-1),
            latents=torch.cat([p.latents for p in pieces], dim=-1),
            lengths=self.token_lengths(context),
        )
