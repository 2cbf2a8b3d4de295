"""The EnCodec SEANet encoder (facebookresearch/encodec ``modules/seanet.py``), as WavTokenizer and SimVQ-audio use it.

Waveform ``[B, 1, T]`` -> latent ``[B, latent_dim, ceil(T / hop)]``. Module names follow the official
``nn.Sequential`` (``model.{i}``, ``SConv1d.conv.conv``, ``block.{1,3}``, ``shortcut``, ``lstm``) and every
convolution keeps the legacy weight norm's two tensors, ``weight_g`` ``[out, 1, 1]`` and ``weight_v``, so official
state dicts load without renaming or folding. Fixed as in every release: ELU, kernels 7 (first and last) and 3
(residual), dilation base 2, residual branches compressed 2x, 1x1-conv shortcuts, reflect padding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..config import Config, ConfigError, check_positive
from ..interfaces import Encoder

FIRST_KERNEL = LAST_KERNEL = 7
RESIDUAL_KERNEL = 3
DILATION_BASE = 2
COMPRESS = 2


@dataclass
class SEANetArch(Config):
    """``n_filters`` channels at the input, doubled by each downsampling conv of stride ``strides[i]`` (kernel
    ``2 * stride``, in encoder order: the official yaml lists them reversed), ``residual_layers`` res blocks
    before each, ``lstm_layers`` LSTM layers (with a skip) at the end, ``latent_dim`` output features.
    ``causal`` pads on the left only (SimVQ-audio) instead of on both sides (WavTokenizer); the padding is still a
    reflection, as released, so the first few positions of each layer see a mirror of the next few."""

    n_filters: int = 32
    strides: tuple[int, ...] = (2, 4, 5, 8)
    residual_layers: int = 1
    lstm_layers: int = 2
    latent_dim: int = 512
    causal: bool = False

    def validate(self) -> None:
        check_positive(self, "n_filters", "strides", "residual_layers", "latent_dim")
        if not self.strides:
            raise ConfigError("strides must list at least one downsampling stride")
        if self.lstm_layers < 0:
            raise ConfigError(f"lstm_layers must be >= 0, got {self.lstm_layers}")
        if self.n_filters % COMPRESS:
            raise ConfigError(f"n_filters must be a multiple of {COMPRESS} (the residual branches halve it), got {self.n_filters}")
        super().validate()

    @property
    def hop_length(self) -> int:
        """Samples per latent frame: the product of the strides."""
        return math.prod(self.strides)


def seanet_padding(length: int, kernel: int, stride: int, dilation: int, causal: bool) -> tuple[int, int]:
    """EnCodec's ``SConv1d`` padding: ``kernel - stride`` in all (left only when causal, else split with the
    larger half on the left) plus what the right needs for a whole last window, so that there are exactly
    ``ceil(length / stride)`` outputs."""
    total = (kernel - 1) * dilation + 1 - stride
    extra = -length % stride
    if causal:
        return total, extra
    return total - total // 2, total // 2 + extra


def reflect_pad(x: torch.Tensor, left: int, right: int) -> torch.Tensor:
    """Reflect padding that also works on inputs no longer than the padding: those are zero-extended on the
    right first and the extension is cut off again (EnCodec's ``pad1d``). The mirrored ends are concatenated
    slices: the values of ``F.pad(mode="reflect")``, several times faster on long inputs on a CPU."""
    length = x.shape[-1]
    extension = max(left, right) - length + 1 if length <= max(left, right) else 0
    x = F.pad(x, (0, extension)) if extension else x
    end = x.shape[-1]
    padded = torch.cat([x[..., 1 : left + 1].flip(-1), x, x[..., end - right - 1 : end - 1].flip(-1)], dim=-1)
    return padded[..., : padded.shape[-1] - extension]


class WeightNormConv1d(nn.Module):
    """``Conv1d`` whose weight is ``weight_g * weight_v / ||weight_v||`` (norm over all dims but the first): the
    legacy ``torch.nn.utils.weight_norm`` with its parameter names, without its deprecated hooks."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, dilation: int = 1):
        super().__init__()
        reference = nn.Conv1d(in_channels, out_channels, kernel_size)  # PyTorch's default initialisation
        self.weight_g = nn.Parameter(reference.weight.detach().flatten(1).norm(dim=1)[:, None, None].clone())
        self.weight_v = nn.Parameter(reference.weight.detach().clone())
        self.bias = nn.Parameter(reference.bias.detach().clone())
        self.stride, self.dilation = stride, dilation

    @property
    def kernel_size(self) -> int:
        return self.weight_v.shape[-1]

    def weight(self) -> torch.Tensor:
        norm = self.weight_v.flatten(1).norm(dim=1)[:, None, None]
        return self.weight_v * (self.weight_g / norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv1d(x, self.weight(), self.bias, self.stride, 0, self.dilation)


class SConv1d(nn.Module):
    """A weight-normed conv with SEANet padding (``conv.conv`` holds the weights, as in the official code)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, dilation: int = 1, causal: bool = False):
        super().__init__()
        self.conv = nn.Module()
        self.conv.conv = WeightNormConv1d(in_channels, out_channels, kernel_size, stride, dilation)
        self.causal = causal

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv = self.conv.conv
        left, right = seanet_padding(x.shape[-1], conv.kernel_size, conv.stride, conv.dilation, self.causal)
        return conv(reflect_pad(x, left, right))


class SEANetResnetBlock(nn.Module):
    """ELU -> conv k3 (dim -> dim/2) -> ELU -> conv k1 (dim/2 -> dim), plus a 1x1 conv shortcut."""

    def __init__(self, dim: int, dilation: int, causal: bool):
        super().__init__()
        hidden = dim // COMPRESS
        self.block = nn.Sequential(
            nn.ELU(), SConv1d(dim, hidden, RESIDUAL_KERNEL, dilation=dilation, causal=causal),
            nn.ELU(), SConv1d(hidden, dim, 1, causal=causal),
        )
        self.shortcut = SConv1d(dim, dim, 1, causal=causal)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.block(x)


class SLSTM(nn.Module):
    """A unidirectional LSTM over time in the conv layout ``[B, C, T]``, with a skip connection."""

    def __init__(self, dim: int, num_layers: int):
        super().__init__()
        self.lstm = nn.LSTM(dim, dim, num_layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sequence = x.permute(2, 0, 1)
        y, _ = self.lstm(sequence)
        return (y + sequence).permute(1, 2, 0)


class SEANetEncoder(Encoder):
    """Waveform ``[B, 1, T]`` -> ``[B, latent_dim, ceil(T / hop)]``: conv k7, then per stride res blocks, ELU and
    a strided conv that doubles the width, then the LSTM, ELU and conv k7 to ``latent_dim``."""

    def __init__(self, arch: SEANetArch):
        super().__init__()
        self.latent_channels = arch.latent_dim
        causal, width = arch.causal, arch.n_filters
        layers: list[nn.Module] = [SConv1d(1, width, FIRST_KERNEL, causal=causal)]
        for stride in arch.strides:
            layers += [SEANetResnetBlock(width, DILATION_BASE**j, causal) for j in range(arch.residual_layers)]
            layers += [nn.ELU(), SConv1d(width, 2 * width, 2 * stride, stride=stride, causal=causal)]
            width *= 2
        if arch.lstm_layers:
            layers.append(SLSTM(width, arch.lstm_layers))
        layers += [nn.ELU(), SConv1d(width, arch.latent_dim, LAST_KERNEL, causal=causal)]
        self.model = nn.Sequential(*layers)

    def forward(self, audio: torch.Tensor, **context) -> torch.Tensor:
        return self.model(audio)
