"""Audio tokenizers: mono ``[B, T]`` with optional per-item ``lengths``, indices ``[B, T']`` out."""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from ..outputs import EncodeOutput
from ..registry import ModelInfo, register_model
from .keywords import Keywords
from .tokenizer import Tokenizer, lengths_to_mask


class AudioTokenizer(Tokenizer):
    """Base of the audio families. ``encode(audio, lengths=None, sample_rate=None, chunk_size=None, chunk_context=None)``.

    ``lengths`` (samples per item) masks padding out of the quantizer's losses, updates and statistics
    and of the reconstruction loss; ``sample_rate``, when given, must equal the model's. ``chunk_size``
    (samples, a multiple of the hop) encodes long inputs window by window so that memory stays flat: each
    chunk is encoded with ``chunk_context`` samples (a multiple of the hop; default one second) of the
    neighbouring audio on each side, and only the chunk's own frames are kept, so the codes match those of
    the whole input wherever the encoder's reach is within the context (see :meth:`chunked_latents`).
    Subclasses take ``[B, T]`` in ``encode_latents`` and return ``[B, T]`` from ``decode_latents``.
    """

    latent_ndim: ClassVar[int] = 3
    keywords: ClassVar[Keywords] = Keywords(
        encode=("lengths", "sample_rate", "chunk_size", "chunk_context"), decode=("lengths",), train=("lengths",)
    )

    def validate_input(self, x: torch.Tensor, context: dict[str, Any]) -> None:
        self.input_spec.validate(x, context.get("lengths"), context.get("sample_rate"))
        super().validate_input(x, context)

    def token_lengths(self, context: dict[str, Any]) -> torch.Tensor | None:
        lengths = context.get("lengths")
        return None if lengths is None else self.input_spec.num_tokens(lengths.to(torch.int64))

    def fit_reconstruction(self, reconstruction: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Cut to the input's ``T`` samples: decoders give whole hops (``F x hop >= T``)."""
        if reconstruction.shape[-1] < x.shape[-1]:
            raise ValueError(f"the reconstruction {list(reconstruction.shape)} is shorter than the audio {list(x.shape)}")
        return reconstruction[..., : x.shape[-1]]

    def reconstruction_loss(self, reconstruction, x, lengths=None, **context) -> torch.Tensor:
        """Over the input's samples only (padding is masked)."""
        if lengths is None:
            return super().reconstruction_loss(reconstruction, x)
        mask = lengths_to_mask(lengths.to(x.device), x.shape[-1])
        return super().reconstruction_loss(reconstruction[mask], x[mask])

    def decode(self, indices: torch.Tensor, lengths: torch.Tensor | None = None, **context) -> torch.Tensor:
        """``[B, F * hop]`` samples; with ``lengths`` (samples per item, as given to ``encode``) cut to the longest
        item, each item's samples past its own length set to 0."""
        audio = super().decode(indices, **context)
        if lengths is None:
            return audio
        frames, hop = indices.shape[-1], self.input_spec.hop_length
        valid = isinstance(lengths, torch.Tensor) and not lengths.is_floating_point() and lengths.shape == indices.shape[:1]
        if not valid or int(lengths.min()) < 1 or int(lengths.max()) > frames * hop:
            raise ValueError(
                f"lengths must be an integer tensor [{indices.shape[0]}] of samples in [1, {frames * hop}] ({frames} tokens of "
                f"{hop} samples), got {lengths!r}"
            )
        audio = audio[..., : int(lengths.max())]
        return audio * lengths_to_mask(lengths.to(audio.device), audio.shape[-1])

    @property
    def default_chunk_context(self) -> int:
        """One second of audio, rounded up to whole hops."""
        hop = self.input_spec.hop_length
        return -(-self.input_spec.sample_rate // hop) * hop

    def encode(self, audio: torch.Tensor, **context) -> EncodeOutput:
        chunk_size, chunk_context = context.get("chunk_size"), context.get("chunk_context")
        if chunk_size is None:
            if chunk_context is not None:
                raise ValueError("chunk_context is the overlap of chunked encoding: give chunk_size too")
            return super().encode(audio, **context)
        self.keywords.check("encode", context, f"{type(self).__name__}.encode")
        self.validate_input(audio, context)
        latents = self.chunked_latents(audio, chunk_size, self.default_chunk_context if chunk_context is None else chunk_context)
        lengths = self.token_lengths(context)
        out = self.quantizer(latents, None if lengths is None else lengths_to_mask(lengths, latents.shape[-1]))
        return EncodeOutput(indices=out.indices, quantized=out.quantized, latents=latents, lengths=lengths)

    def chunked_latents(self, audio: torch.Tensor, chunk_size: int, chunk_context: int) -> torch.Tensor:
        """The encoder's latents ``[B, C, ceil(T / hop)]`` computed over windows of at most ``chunk_size + 2 x
        chunk_context`` samples: chunk ``[s, s + chunk_size)`` is encoded within ``[s - context, s + chunk_size +
        context)`` (cut at the ends of the audio) and keeps the frames of its own samples. Frames are equal to the
        whole-input ones when the encoder's receptive field is within the context (convolutions); an LSTM's
        infinite reach makes them close rather than equal."""
        hop = self.input_spec.hop_length
        for name, value, least in (("chunk_size", chunk_size, hop), ("chunk_context", chunk_context, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < least or value % hop:
                raise ValueError(f"{name} must be a {'positive' if least else 'non-negative'} multiple of the hop length {hop}, got {value!r}")
        total, pieces = audio.shape[-1], []
        for start in range(0, total, chunk_size):
            stop, left = min(start + chunk_size, total), max(0, start - chunk_context)
            window = self.encode_latents(audio[:, left : min(total, stop + chunk_context)])
            first = (start - left) // hop
            pieces.append(window[..., first : first + -(-(stop - start) // hop)])
        return torch.cat(pieces, dim=-1)


def register_audio_model(name: str, architecture: str, config: Any, **metadata: Any) -> ModelInfo:
    """Register ``config`` under ``name`` with what the config itself determines (modality, codebook size, tokens
    per second, input spec) plus ``metadata``."""
    info = ModelInfo(
        name=name,
        architecture=architecture,
        modality="audio",
        codebook_size=config.quantizer["codebook_size"],
        tokens_per_second=config.sample_rate / config.hop_length,
        input_spec=config.input_spec(),
        **metadata,
    )
    return register_model(info, config)
