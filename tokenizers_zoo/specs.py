"""What a tokenizer accepts, per modality, and the checks that turn bad input into clear errors."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

_RANGE_SLACK = 1e-3  # fraction of the value range tolerated outside it (resampling, float rounding)


@dataclass(frozen=True)
class InputSpec:
    """Base of the per-modality specs; ``index_layout`` documents the indices' shape for the modality."""

    modality: ClassVar[str]
    index_layout: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        return {"modality": self.modality, **dataclasses.asdict(self)}

    def describe(self) -> str:
        return ", ".join(f"{key}={value}" for key, value in self.to_dict().items())


@dataclass(frozen=True)
class ImageSpec(InputSpec):
    """Images ``[B, channels, H, W]``, floating point in ``value_range``, H and W multiples of ``size_multiple``."""

    modality: ClassVar[str] = "image"
    index_layout: ClassVar[str] = "[B, h, w] (one codebook) or [B, G, h, w] (G groups / sub-codebooks)"
    channels: int = 3
    value_range: tuple[float, float] = (-1.0, 1.0)
    size_multiple: int = 1
    image_size: int | None = None

    def validate(self, images: torch.Tensor) -> None:
        _check_float_tensor(images, "images", f"[B, {self.channels}, H, W]")
        if images.ndim != 4:
            raise ValueError(f"images must be [B, {self.channels}, H, W], got shape {tuple(images.shape)}")
        if images.shape[1] != self.channels:
            raise ValueError(f"images must have {self.channels} channels on dim 1, got shape {tuple(images.shape)}")
        height, width = images.shape[-2:]
        if height % self.size_multiple or width % self.size_multiple:
            raise ValueError(
                f"image height and width must be multiples of {self.size_multiple}, got {height}x{width}; "
                "crop or resize first"
            )
        _check_range(images, "images", self.value_range)


@dataclass(frozen=True)
class AudioSpec(InputSpec):
    """Mono waveforms ``[B, T]`` at ``sample_rate`` in ``value_range``; ``hop_length`` samples per token."""

    modality: ClassVar[str] = "audio"
    index_layout: ClassVar[str] = "[B, T'] (one quantizer) or [B, Q, T'] (Q quantizers), T' = ceil(T / hop_length)"
    sample_rate: int = 24000
    hop_length: int = 320
    value_range: tuple[float, float] = (-1.0, 1.0)

    def validate(self, audio: torch.Tensor, lengths: torch.Tensor | None = None, sample_rate: int | None = None) -> None:
        if sample_rate is not None and sample_rate != self.sample_rate:
            raise ValueError(f"audio at {sample_rate} Hz given, this tokenizer expects {self.sample_rate} Hz; resample first")
        _check_float_tensor(audio, "audio", "[B, T]")
        if audio.ndim != 2:
            raise ValueError(f"audio must be mono [B, T], got shape {tuple(audio.shape)}")
        if lengths is not None:
            if not isinstance(lengths, torch.Tensor) or lengths.dtype not in (torch.int32, torch.int64):
                raise TypeError("lengths must be an int32/int64 tensor of samples per item")
            if tuple(lengths.shape) != (audio.shape[0],):
                raise ValueError(f"lengths must have shape ({audio.shape[0]},), got {tuple(lengths.shape)}")
            if lengths.numel() and (int(lengths.min()) < 1 or int(lengths.max()) > audio.shape[1]):
                raise ValueError(f"lengths must be in [1, {audio.shape[1]}], got {lengths.tolist()}")
        _check_range(audio, "audio", self.value_range)

    def num_tokens(self, num_samples: torch.Tensor | int) -> torch.Tensor | int:
        """Tokens covering ``num_samples`` samples (a partial hop counts as one token)."""
        return -(-num_samples // self.hop_length)


@dataclass(frozen=True)
class GraphSpec(InputSpec):
    """Node features ``[N, num_features]`` plus ``edge_index`` ``[2, E]`` (int64 node ids in [0, N))."""

    modality: ClassVar[str] = "graph"
    index_layout: ClassVar[str] = "[N] (one code per node) or [N, G] (G groups)"
    num_features: int = 1433

    def validate(self, features: torch.Tensor, edge_index: torch.Tensor | None = None) -> None:
        _check_float_tensor(features, "node features", f"[N, {self.num_features}]")
        if features.ndim != 2 or features.shape[1] != self.num_features:
            raise ValueError(f"node features must be [N, {self.num_features}], got shape {tuple(features.shape)}")
        if edge_index is None:
            raise ValueError("graph tokenizers need the structure: pass edge_index=[2, E] int64")
        if not isinstance(edge_index, torch.Tensor) or edge_index.dtype != torch.int64:
            raise TypeError(f"edge_index must be an int64 tensor, got {getattr(edge_index, 'dtype', type(edge_index))}")
        if edge_index.ndim != 2 or edge_index.shape[0] != 2:
            raise ValueError(f"edge_index must be [2, E], got shape {tuple(edge_index.shape)}")
        if edge_index.numel() and (int(edge_index.min()) < 0 or int(edge_index.max()) >= features.shape[0]):
            raise ValueError(f"edge_index holds node ids outside [0, {features.shape[0]})")
        if not torch.isfinite(features).all():
            raise ValueError("node features contain NaN or infinite values")


SPECS: dict[str, type[InputSpec]] = {spec.modality: spec for spec in (ImageSpec, AudioSpec, GraphSpec)}


def spec_from_dict(values: dict[str, Any]) -> InputSpec:
    """Inverse of :meth:`InputSpec.to_dict`."""
    values = dict(values)
    cls = SPECS[values.pop("modality")]
    if "value_range" in values:
        values["value_range"] = tuple(values["value_range"])
    return cls(**values)


def _check_float_tensor(x: Any, name: str, layout: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor {layout}, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {x.dtype} (convert and scale it first)")


def _check_range(x: torch.Tensor, name: str, value_range: tuple[float, float]) -> None:
    if x.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(x.shape)})")
    low, high = (float(v) for v in torch.aminmax(x.detach().float()))
    if not (torch.isfinite(torch.tensor([low, high])).all()):
        raise ValueError(f"{name} contain NaN or infinite values")
    lo, hi = value_range
    slack = _RANGE_SLACK * (hi - lo)
    if low < lo - slack or high > hi + slack:
        raise ValueError(f"{name} must be in [{lo:g}, {hi:g}], got values in [{low:.4g}, {high:.4g}]")
