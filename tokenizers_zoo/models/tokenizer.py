"""The Tokenizer: Encoder -> Quantizer -> Decoder, with encode / decode / forward and Hub I/O."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from .. import hub, registry
from ..config import Config
from ..interfaces import Decoder, Encoder, Quantizer
from ..outputs import EncodeOutput, QuantizerOutput, TokenizerOutput
from ..specs import InputSpec

RECONSTRUCTION_LOSSES = {"l1": F.l1_loss, "mse": F.mse_loss}


@dataclass
class TokenizerConfig(Config):
    """Fields every tokenizer config has. ``quantizer`` is a quantizer spec (see ``build_quantizer``)."""

    quantizer: dict[str, Any] | None = None
    reconstruction_loss: str = "l1"

    def __post_init__(self) -> None:
        if self.reconstruction_loss not in RECONSTRUCTION_LOSSES:
            raise ValueError(f"reconstruction_loss must be one of {sorted(RECONSTRUCTION_LOSSES)}, got {self.reconstruction_loss!r}")

    def input_spec(self) -> InputSpec:
        """What the model built from this config accepts."""
        raise NotImplementedError


class Tokenizer(nn.Module):
    """Base of every model in the zoo.

    Subclasses set ``architecture`` (registers the class), ``config_class``, build ``encoder``,
    ``quantizer`` and ``decoder`` from the config, and describe their input with ``input_spec``.
    Modality bases (:class:`ImageTokenizer`, :class:`AudioTokenizer`, :class:`GraphTokenizer`) fix the
    index layout, the context arguments (``lengths``, ``edge_index``) and the reconstruction loss.
    """

    architecture: ClassVar[str]
    config_class: ClassVar[type[TokenizerConfig]] = TokenizerConfig
    latent_ndim: ClassVar[int]
    model_context_keys: ClassVar[tuple[str, ...]] = ()
    """Context arguments (e.g. ``edge_index``) passed on to the encoder and decoder."""

    encoder: Encoder
    quantizer: Quantizer
    decoder: Decoder

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if "architecture" in cls.__dict__:
            registry.register_architecture(cls)

    def __init__(self, config: TokenizerConfig):
        super().__init__()
        if not isinstance(config, self.config_class):
            raise TypeError(f"{type(self).__name__} needs a {self.config_class.__name__}, got {type(config).__name__}")
        self.config = config
        self.model_name: str | None = None

    @property
    def input_spec(self) -> InputSpec:
        return self.config.input_spec()

    @property
    def index_layout(self) -> str:
        return self.quantizer.index_layout(self.latent_ndim)

    # ---------------------------------------------------------------- model-specific halves

    def encode_latents(self, x: torch.Tensor, **context) -> torch.Tensor:
        """Signal -> continuous latent (features on dim 1) that the quantizer sees."""
        return self.encoder(x, **context)

    def decode_latents(self, quantized: torch.Tensor, **context) -> torch.Tensor:
        """Quantized latent -> signal."""
        return self.decoder(quantized, **context)

    def token_lengths(self, context: dict[str, Any]) -> torch.Tensor | None:
        """Valid tokens per item for variable-length inputs; ``None`` when every token is valid."""
        return None

    def reconstruction_loss(self, reconstruction: torch.Tensor, x: torch.Tensor, **context) -> torch.Tensor:
        return RECONSTRUCTION_LOSSES[self.config.reconstruction_loss](reconstruction.float(), x.float())

    # ---------------------------------------------------------------- public API

    def encode(self, x: torch.Tensor, **context) -> EncodeOutput:
        """Signal -> indices (in the modality's layout) and the quantized latents."""
        latents, out, lengths = self._quantize(x, context)
        return EncodeOutput(indices=out.indices, quantized=out.quantized, latents=latents, lengths=lengths)

    def decode(self, indices: torch.Tensor, **context) -> torch.Tensor:
        """Indices -> signal."""
        self.quantizer.check_indices(indices, self.latent_ndim)
        codes = self.quantizer.indices_to_codes(indices.to(torch.int64))
        return self.decode_latents(codes, **self._model_context(context))

    def forward(self, x: torch.Tensor, **context) -> TokenizerOutput:
        """Training pass: reconstruction, named losses (reconstruction + quantizer) and codebook stats."""
        _, out, _ = self._quantize(x, context)
        reconstruction = self.decode_latents(out.quantized, **self._model_context(context))
        losses = {"reconstruction": self.reconstruction_loss(reconstruction, x, **context), **out.losses}
        return TokenizerOutput(
            reconstruction=reconstruction,
            indices=out.indices,
            loss=losses["reconstruction"] + out.loss,
            losses=losses,
            stats=out.stats,
        )

    def _quantize(self, x: torch.Tensor, context: dict[str, Any]) -> tuple[torch.Tensor, QuantizerOutput, torch.Tensor | None]:
        self.input_spec.validate(x, **context)
        latents = self.encode_latents(x, **self._model_context(context))
        lengths = self.token_lengths(context)
        mask = None if lengths is None else lengths_to_mask(lengths, latents.shape[-1])
        return latents, self.quantizer(latents, mask), lengths

    def _model_context(self, context: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in context.items() if key in self.model_context_keys}

    # ---------------------------------------------------------------- Hub I/O

    def save_pretrained(self, directory: str | os.PathLike) -> None:
        """Write ``config.json``, ``model.safetensors`` and a ``README.md`` model card."""
        hub.save_pretrained(self, directory)

    def push_to_hub(self, repo_id: str, **kwargs):
        """Upload the folder :meth:`save_pretrained` writes to the Hub repo ``repo_id``."""
        return hub.push_to_hub(self, repo_id, **kwargs)

    @classmethod
    def from_pretrained(cls, source: str | os.PathLike, **kwargs) -> "Tokenizer":
        """Load from a folder, a registered name or a Hub repo id (see :func:`tokenizers_zoo.hub.load_pretrained`)."""
        model = hub.load_pretrained(source, **kwargs)
        if not isinstance(model, cls):
            raise TypeError(f"{source} holds a {type(model).__name__}, not a {cls.__name__}")
        return model


def lengths_to_mask(lengths: torch.Tensor, size: int) -> torch.Tensor:
    """``[B]`` lengths -> ``[B, size]`` bool mask, True where the position is valid."""
    return torch.arange(size, device=lengths.device)[None, :] < lengths[:, None]
