"""Dimension-wise post-training quantization of a tokenizer's continuous latent, after TokenBridge (Wang et al.,
"Bridging Continuous and Discrete Tokens for Autoregressive Visual Generation", arXiv 2503.16430).

Each channel of the pre-quantization latent is quantized on its own into ``2^b`` levels: normalised to a standard
normal, clamped to +-3, put in the bin of edges ``Phi^-1(i / 2^b)`` (clamped to +-3) whose truncated-normal mean
``(phi(a) - phi(b)) / (Phi(b) - Phi(a))`` is nearest, and decoded to that mean. No training; the model's own
quantizer is bypassed (``decode_latents`` of the de-quantized latent).

TokenBridge (``reconstruction.py`` ``post_training_quantize``, ``models/tokenbridge.py`` ``quantize``) maps a fixed
range ``[low, high]`` (+-5 on MAR's KL-16 latents times 0.2325) linearly onto ``[-3, 3]``; that is
:meth:`GaussianPTQ.from_range`, equal to its formulas. Here the default is per-channel calibration instead:
``(x - mean_c) / std_c`` with each channel's mean and standard deviation measured on data
(:meth:`GaussianPTQ.calibrate`), i.e. TokenBridge's map with ``[low, high] = mean_c +- 3 std_c``. As in
TokenBridge the index is that of the nearest reconstruction value, which is not always the bin the value falls in
(the nearest value's cell is bounded by midpoints of the means, not by the quantile edges).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from typing import Iterable

import torch
from torch import nn

from ..atomic import atomic_write
from ..config import Config, ConfigError, read_json

STD_RANGE = 3.0
MAX_BITS = 9
"""From 10 bits on, the outer quantiles ``Phi^-1(1 / 2^b)`` lie beyond -3 and their bins vanish under the clamp
(TokenBridge's code then gives them the value 0, in the middle of the range): refused."""


def gaussian_levels(bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Float64 bin edges ``[2^b + 1]`` (standard-normal quantiles, clamped to +-3) and reconstruction values
    ``[2^b]`` (the mean of a standard normal truncated to each bin), both increasing."""
    problem = _bits_problem(bits)
    if problem:
        raise ValueError(problem)
    levels = 2**bits
    edges = torch.special.ndtri(torch.arange(levels + 1, dtype=torch.float64) / levels).clamp(-STD_RANGE, STD_RANGE)
    low, high = edges[:-1], edges[1:]
    values = (_normal_density(low) - _normal_density(high)) / (torch.special.ndtr(high) - torch.special.ndtr(low))
    return edges, values


def _normal_density(t: torch.Tensor) -> torch.Tensor:
    return torch.exp(-0.5 * t * t) / math.sqrt(2 * math.pi)


def _bits_problem(bits: int) -> str | None:
    if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= MAX_BITS:
        return f"bits must be an integer from 1 to {MAX_BITS}, got {bits!r}"
    return None


@dataclass
class GaussianPTQ(Config):
    """``bits`` per channel and the per-channel ``mean`` and ``std`` (dim 1 of the latents) that normalise them.

    A config: it round-trips through JSON (:meth:`save` / :meth:`load`), separate from the model.
    """

    bits: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def validate(self) -> None:
        if _bits_problem(self.bits):
            raise ConfigError(_bits_problem(self.bits))
        if not self.mean or len(self.mean) != len(self.std):
            raise ConfigError(f"mean and std need one value per channel, got {len(self.mean)} and {len(self.std)}")
        if min(self.std) <= 0:
            raise ConfigError(f"every channel's std must be positive, got {min(self.std)}")
        super().validate()

    @classmethod
    def calibrate(cls, latents: torch.Tensor | Iterable[torch.Tensor], bits: int) -> "GaussianPTQ":
        """Mean and std of each channel (dim 1) over every item and position of ``latents`` (a batch or an
        iterable of batches ``[B, C, ...]``)."""
        count, total, squares = 0, 0.0, 0.0
        for batch in [latents] if isinstance(latents, torch.Tensor) else latents:
            vectors = batch.detach().double().movedim(1, -1).reshape(-1, batch.shape[1])
            count, total, squares = count + vectors.shape[0], total + vectors.sum(0), squares + vectors.square().sum(0)
        if count < 2:
            raise ValueError(f"calibration needs at least two latent positions, got {count}")
        mean = total / count
        std = ((squares - count * mean.square()) / (count - 1)).clamp_min(0).sqrt()
        if not bool(std.gt(0).all()):
            raise ValueError(f"channels {std.eq(0).nonzero().flatten().tolist()} are constant on the calibration data: nothing to scale")
        return cls(bits, tuple(mean.tolist()), tuple(std.tolist()))

    @classmethod
    def from_range(cls, bits: int, low: float, high: float, channels: int) -> "GaussianPTQ":
        """TokenBridge's fixed range: ``[low, high]`` of every channel maps linearly onto ``[-3, 3]``."""
        if not high > low:
            raise ValueError(f"the range needs low < high, got [{low}, {high}]")
        return cls(bits, ((low + high) / 2,) * channels, ((high - low) / (2 * STD_RANGE),) * channels)

    @property
    def levels(self) -> int:
        return 2**self.bits

    def quantize(self, latents: torch.Tensor) -> torch.Tensor:
        """``[B, C, ...]`` -> int64 indices of the same shape, in ``[0, 2^b)``."""
        mean, std = self._per_channel(latents)
        normalised = ((latents.detach().double() - mean) / std).clamp(-STD_RANGE, STD_RANGE)
        values = gaussian_levels(self.bits)[1].to(latents.device)
        return torch.bucketize(normalised, (values[1:] + values[:-1]) / 2)  # nearest value; the lower one on a tie

    def dequantize(self, indices: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Indices ``[B, C, ...]`` -> the latent of their reconstruction values."""
        if indices.is_floating_point() or (indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= self.levels)):
            raise ValueError(f"indices must be integers in [0, {self.levels})")
        mean, std = self._per_channel(indices)
        values = gaussian_levels(self.bits)[1].to(indices.device)
        return (mean + std * values[indices]).to(dtype)

    def _per_channel(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.ndim < 2 or x.shape[1] != len(self.mean):
            raise ValueError(f"expected {len(self.mean)} channels on dim 1, got shape {tuple(x.shape)}")
        shape = (1, -1, *[1] * (x.ndim - 2))
        return tuple(torch.tensor(values, dtype=torch.float64, device=x.device).view(shape) for values in (self.mean, self.std))

    def save(self, path: str | os.PathLike) -> None:
        """Write the calibration as JSON (atomically)."""
        atomic_write(path, lambda temporary: temporary.write_text(json.dumps(self.to_dict()) + "\n", encoding="utf-8"))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "GaussianPTQ":
        return cls.from_dict(read_json(path))


@torch.no_grad()
def continuous_latents(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """What the model's quantizer sees (``model.encode(x).latents``), without running the quantizer."""
    model.validate_input(x, {})
    return model.encode_latents(x)


@torch.no_grad()
def ptq_reconstruct(model: nn.Module, ptq: GaussianPTQ, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(indices, reconstruction)`` of ``x`` through the model's encoder, ``ptq`` and the model's decoder."""
    indices = ptq.quantize(continuous_latents(model, x))
    return indices, model.decode_latents(ptq.dequantize(indices, model.dtype))
