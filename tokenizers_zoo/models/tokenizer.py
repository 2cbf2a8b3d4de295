"""The Tokenizer: Encoder -> Quantizer -> Decoder, with encode / decode / forward and Hub I/O."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from .. import hub, registry
from ..config import Config, ConfigError
from ..interfaces import Decoder, Encoder, Quantizer
from ..outputs import EncodeOutput, QuantizerOutput, TokenizerOutput
from ..specs import InputSpec
from .keywords import Keywords

RECONSTRUCTION_LOSSES = {"l1": F.l1_loss, "mse": F.mse_loss}


@dataclass
class TokenizerConfig(Config):
    """Fields every tokenizer config has.

    ``quantizer`` is a quantizer spec (see ``build_quantizer``). ``loss_weights`` weights the model's named
    losses: ``"reconstruction"`` and those its class adds (``Tokenizer.loss_names``); unnamed weights are 1.
    The quantizer weights its own losses through its options (``beta``, ``codebook_weight``, ...).
    """

    quantizer: dict[str, Any] = field(default_factory=lambda: {"type": "vq", "codebook_size": 1024})
    reconstruction_loss: str = "l1"
    loss_weights: dict[str, float] = field(default_factory=dict)

    def validate(self) -> None:
        if self.reconstruction_loss not in RECONSTRUCTION_LOSSES:
            raise ConfigError(f"reconstruction_loss must be one of {sorted(RECONSTRUCTION_LOSSES)}, got {self.reconstruction_loss!r}")
        if not isinstance(self.quantizer, dict) or "type" not in self.quantizer:
            raise ConfigError(f"quantizer must be a quantizer spec with a 'type', got {self.quantizer!r}")
        super().validate()

    def input_spec(self) -> InputSpec:
        """What the model built from this config accepts."""
        raise NotImplementedError


class Tokenizer(nn.Module):
    """Base of every model in the zoo.

    Subclasses set ``architecture`` (registers the class), ``config_class``, build ``encoder``,
    ``quantizer`` and ``decoder`` from the config, and describe their input with ``input_spec``. Modality
    bases (:class:`ImageTokenizer`, :class:`AudioTokenizer`, :class:`GraphTokenizer`) fix the index layout,
    the input checks, the keywords and the reconstruction loss. A family adds keywords with
    ``keywords = Base.keywords | Keywords(...)`` and losses by naming them in ``loss_names`` and returning
    them from :meth:`extra_losses`.
    """

    architecture: ClassVar[str]
    config_class: ClassVar[type[TokenizerConfig]] = TokenizerConfig
    latent_ndim: ClassVar[int]
    keywords: ClassVar[Keywords] = Keywords()
    loss_names: ClassVar[tuple[str, ...]] = ()
    """Names of the losses :meth:`extra_losses` returns (weighted by ``config.loss_weights``)."""

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
        unknown = sorted(set(config.loss_weights) - {"reconstruction", *self.loss_names})
        if unknown:
            raise ConfigError(f"loss_weights names unknown loss(es) {unknown}; {type(self).__name__}'s losses: {['reconstruction', *self.loss_names]}")
        self.config = config
        self.model_name: str | None = None
        self.revision: str | None = None

    @property
    def input_spec(self) -> InputSpec:
        return self.config.input_spec()

    @property
    def index_layout(self) -> str:
        return self.quantizer.index_layout(self.latent_ndim)

    @property
    def dtype(self) -> torch.dtype:
        """The floating dtype of the weights: inputs must have it."""
        return next(p.dtype for p in self.parameters() if p.is_floating_point())

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    # ---------------------------------------------------------------- model-specific parts

    def encode_latents(self, x: torch.Tensor, **context) -> torch.Tensor:
        """Signal -> continuous latent (features on dim 1) that the quantizer sees."""
        return self.encoder(x, **context)

    def decode_latents(self, quantized: torch.Tensor, **context) -> torch.Tensor:
        """Quantized latent -> signal."""
        return self.decoder(quantized, **context)

    def validate_input(self, x: torch.Tensor, context: dict[str, Any]) -> None:
        """Raise a clear error for a signal (and context) this model cannot take; modality bases extend it."""
        if isinstance(x, torch.Tensor) and x.is_floating_point() and x.dtype != self.dtype:
            raise TypeError(f"the input is {x.dtype} but the model's weights are {self.dtype}: convert it with .to({self.dtype})")
        if isinstance(x, torch.Tensor) and x.device != self.device:
            raise ValueError(f"the input is on {x.device} but the model is on {self.device}: move one of them")

    def token_lengths(self, context: dict[str, Any]) -> torch.Tensor | None:
        """Valid tokens per item for variable-length inputs; ``None`` when every token is valid."""
        return None

    def fit_reconstruction(self, reconstruction: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The training pass's reconstruction as the losses and objectives compare it with ``x``; unchanged by default."""
        return reconstruction

    def reconstruction_loss(self, reconstruction: torch.Tensor, x: torch.Tensor, **context) -> torch.Tensor:
        return RECONSTRUCTION_LOSSES[self.config.reconstruction_loss](reconstruction.float(), x.float())

    def extra_losses(self, x: torch.Tensor, out: TokenizerOutput, **context) -> dict[str, torch.Tensor]:
        """The family's own unweighted losses, named as in ``loss_names`` (e.g. a mel loss, a disentanglement
        term); may also add what it computed to ``out.extras``. None by default."""
        return {}

    def reconstruction_metrics(self, x: torch.Tensor, reconstruction: torch.Tensor, **context) -> dict[str, torch.Tensor]:
        """Per-item quality metrics ``{name: [B]}`` the trainer averages over a validation split."""
        return {}

    def last_layer(self) -> torch.Tensor:
        """The decoder's last weight, where a GAN objective balances its gradient against the reconstruction's."""
        return self.decoder.last_layer()

    # ---------------------------------------------------------------- public API

    def encode(self, x: torch.Tensor, **context) -> EncodeOutput:
        """Signal -> indices (in the modality's layout) and the quantized and pre-quantization latents."""
        self.keywords.check("encode", context, f"{type(self).__name__}.encode")
        latents, out, lengths = self._quantize(x, context)
        return EncodeOutput(indices=out.indices, quantized=out.quantized, latents=latents, lengths=lengths)

    def decode(self, indices: torch.Tensor, **context) -> torch.Tensor:
        """Indices -> signal."""
        self.keywords.check("decode", context, f"{type(self).__name__}.decode")
        self.quantizer.check_indices(indices, self.latent_ndim)
        self.check_token_grid(indices)
        codes = self.quantizer.indices_to_codes(indices.to(torch.int64))
        return self.decode_latents(codes, **context)

    def check_token_grid(self, indices: torch.Tensor) -> None:
        """Refuse, before any work, a token grid too large to decode; nothing to check by default."""

    def forward(self, x: torch.Tensor, **context) -> TokenizerOutput:
        """Training pass: reconstruction, the named weighted losses (reconstruction, quantizer, the family's
        own) that sum to ``loss``, codebook statistics, and ``extras``."""
        self.keywords.check("train", context, f"{type(self).__name__}.forward")
        latents, quantized, _ = self._quantize(x, context)
        reconstruction = self.fit_reconstruction(self.decode_latents(quantized.quantized, **context), x)
        out = TokenizerOutput(
            reconstruction=reconstruction,
            indices=quantized.indices,
            loss=torch.zeros(()),
            losses={},
            stats=quantized.stats,
            extras={"latents": latents, "quantized": quantized.quantized, **quantized.extras},
        )
        named = {"reconstruction": self.reconstruction_loss(reconstruction, x, **context), **self.extra_losses(x, out, **context)}
        undeclared = set(named) - {"reconstruction", *self.loss_names}
        clashing = set(named) & set(quantized.losses)
        if undeclared or clashing:
            raise RuntimeError(f"{type(self).__name__}.extra_losses returned undeclared {sorted(undeclared)} or clashing {sorted(clashing)} losses")
        weights = self.config.loss_weights
        out.losses = {**{name: weights.get(name, 1.0) * value for name, value in named.items()}, **quantized.losses}
        out.loss = sum(out.losses.values())
        return out

    def _quantize(self, x: torch.Tensor, context: dict[str, Any]) -> tuple[torch.Tensor, QuantizerOutput, torch.Tensor | None]:
        self.validate_input(x, context)
        latents = self.encode_latents(x, **context)
        lengths = self.token_lengths(context)
        mask = None if lengths is None else lengths_to_mask(lengths, latents.shape[-1])
        return latents, self.quantizer(latents, mask), lengths

    # ---------------------------------------------------------------- Hub I/O

    def save_pretrained(self, directory: str | os.PathLike) -> None:
        """Write ``config.json``, ``model.safetensors`` and a ``README.md`` model card (the folder as a whole)."""
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
