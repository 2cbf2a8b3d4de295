"""The three component interfaces every tokenizer is built from: Encoder -> Quantizer -> Decoder.

Layout convention, shared by all modalities: the feature axis of a latent is dim 1.
Images ``[B, C, h, w]``, audio ``[B, C, T]``, graphs ``[N, C]``. A quantizer's indices drop that axis
(``[B, h, w]``, ``[B, T]``, ``[N]``); quantizers with several groups or sub-codebooks put the group axis
there instead (``[B, G, h, w]``). Indices are int64 in memory.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from typing import ClassVar

import torch
from torch import nn

from .outputs import QuantizerOutput


class Encoder(nn.Module, ABC):
    """Signal -> continuous latent with ``latent_channels`` features on dim 1."""

    latent_channels: int

    @abstractmethod
    def forward(self, x: torch.Tensor, **context) -> torch.Tensor: ...

    def attention_positions(self, latent_size: tuple[int, ...]) -> int:
        """Most positions one self-attention layer attends over, for a latent of ``latent_size`` (0: none)."""
        return 0


class Decoder(nn.Module, ABC):
    """Quantized latent (features on dim 1) -> signal."""

    @abstractmethod
    def forward(self, quantized: torch.Tensor, **context) -> torch.Tensor: ...

    def attention_positions(self, latent_size: tuple[int, ...]) -> int:
        """Most positions one self-attention layer attends over, for a latent of ``latent_size`` (0: none)."""
        return 0

    def last_layer(self) -> torch.Tensor:
        """The weight of the layer that produces the signal (for the adaptive GAN weight)."""
        raise NotImplementedError(f"{type(self).__name__} does not name its last layer; the adaptive GAN weight needs it")


class Quantizer(nn.Module, ABC):
    """Latent -> :class:`QuantizerOutput`. Modality-agnostic: sees vectors of size ``dim`` on dim 1.

    ``codebook_size`` counts the codes of one group; ``num_groups > 1`` adds the group axis at dim 1 of
    the indices. ``mask`` (the latent's shape without dim 1, True = valid) excludes padding from losses,
    codebook updates and statistics.
    """

    dim: int
    codebook_size: int
    num_groups: int = 1
    statistics_buffers: ClassVar[tuple[str, ...]] = ()
    """Buffers that track training statistics rather than define the codes (left out of the fingerprint)."""

    @property
    def code_dim(self) -> int:
        """Size of one code (``dim / num_groups``)."""
        return self.dim // self.num_groups

    @abstractmethod
    def forward(self, z: torch.Tensor, mask: torch.Tensor | None = None) -> QuantizerOutput: ...

    @abstractmethod
    def indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        """Indices -> quantized latent (features on dim 1), the inverse of the lookup in ``forward``."""

    def codebook_state(self) -> dict[str, torch.Tensor]:
        """The tensors that define what each index means: the state dict without statistics buffers."""
        statistics = {
            f"{prefix}.{name}" if prefix else name
            for prefix, module in self.named_modules()
            if isinstance(module, Quantizer)
            for name in module.statistics_buffers
        }
        return {key: value for key, value in self.state_dict().items() if key not in statistics}

    def codebook_fingerprint(self) -> str:
        """``sha256:<hex>`` of the sizes and of :meth:`codebook_state` (names, dtypes, shapes, bytes).

        Token files store it, so indices are never decoded with codes they were not made with.
        """
        digest = hashlib.sha256(f"{self.dim}:{self.codebook_size}:{self.num_groups}".encode())
        for name, tensor in sorted(self.codebook_state().items()):
            data = tensor.detach().cpu().contiguous()
            digest.update(f"|{name}:{data.dtype}:{list(data.shape)}|".encode())
            digest.update(data.reshape(-1).view(torch.uint8).numpy().tobytes())
        return "sha256:" + digest.hexdigest()

    def check_indices(self, indices: torch.Tensor, latent_ndim: int) -> None:
        """Raise a clear error unless ``indices`` fit this quantizer for a latent of ``latent_ndim`` dims."""
        if not isinstance(indices, torch.Tensor):
            raise TypeError(f"indices must be a torch.Tensor, got {type(indices).__name__}")
        if indices.is_floating_point() or indices.is_complex() or indices.dtype == torch.bool:
            raise TypeError(f"indices must be an integer tensor, got {indices.dtype}")
        expected = latent_ndim - 1 + (self.num_groups > 1)
        if indices.ndim != expected:
            raise ValueError(f"indices must have {expected} dims ({self.index_layout(latent_ndim)}), got shape {tuple(indices.shape)}")
        if self.num_groups > 1 and indices.shape[1] != self.num_groups:
            raise ValueError(f"indices have {indices.shape[1]} groups on dim 1, this quantizer has {self.num_groups}")
        if indices.numel() == 0:
            raise ValueError(f"the token grid is empty (shape {tuple(indices.shape)}): nothing to decode")
        low, high = int(indices.min()), int(indices.max())
        if low < 0 or high >= self.codebook_size:
            raise ValueError(f"indices must be in [0, {self.codebook_size}), got values in [{low}, {high}]")

    def index_layout(self, latent_ndim: int) -> str:
        """Human-readable index layout, e.g. ``[B, h, w]`` or ``[B, G, h, w]``."""
        axes = {2: ["N"], 3: ["B", "T"], 4: ["B", "h", "w"]}.get(latent_ndim, ["B", *[f"d{i}" for i in range(latent_ndim - 2)]])
        if self.num_groups > 1:
            axes = axes[:1] + ["G"] + axes[1:]
        return "[" + ", ".join(axes) + "]"


def to_vectors(z: torch.Tensor) -> torch.Tensor:
    """``[B, D, *rest]`` (or ``[N, D]``) -> ``[M, D]`` vectors, features last."""
    return z.movedim(1, -1).reshape(-1, z.shape[1])


def from_vectors(vectors: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Inverse of :func:`to_vectors` for a latent of ``shape`` (the vectors' last dim becomes dim 1)."""
    rest = (shape[0], *shape[2:])
    return vectors.reshape(*rest, vectors.shape[-1]).movedim(-1, 1)
