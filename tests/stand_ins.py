"""Small stand-in audio and graph tokenizers that drive the audio ``[B, T]`` and graph ``[N]`` layouts
through the shared interfaces before the real families (WavTokenizer, VQGraph) exist."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from tokenizers_zoo import AudioSpec, AudioTokenizer, Decoder, Encoder, GraphSpec, GraphTokenizer, TokenizerConfig
from tokenizers_zoo.quantizers import build_quantizer


@dataclass
class FrameAudioConfig(TokenizerConfig):
    sample_rate: int = 8000
    hop_length: int = 8
    dim: int = 4
    quantizer: dict[str, Any] = field(default_factory=lambda: {"type": "vq", "codebook_size": 16})

    def input_spec(self) -> AudioSpec:
        return AudioSpec(sample_rate=self.sample_rate, hop_length=self.hop_length)


class FrameEncoder(Encoder):
    """One latent per hop from that hop's samples only (so chunked encoding is exact)."""

    def __init__(self, hop: int, dim: int):
        super().__init__()
        self.hop, self.latent_channels = hop, dim
        self.conv = nn.Conv1d(1, dim, hop, stride=hop)

    def forward(self, audio: torch.Tensor, **context) -> torch.Tensor:
        return self.conv(F.pad(audio[:, None], (0, -audio.shape[-1] % self.hop)))


class FrameDecoder(Decoder):
    def __init__(self, hop: int, dim: int):
        super().__init__()
        self.conv = nn.ConvTranspose1d(dim, 1, hop, stride=hop)

    def forward(self, quantized: torch.Tensor, **context) -> torch.Tensor:
        return self.conv(quantized)[:, 0]


class FrameAudioTokenizer(AudioTokenizer):
    architecture = "test_frame_audio"
    config_class = FrameAudioConfig

    def __init__(self, config: FrameAudioConfig):
        super().__init__(config)
        self.encoder = FrameEncoder(config.hop_length, config.dim)
        self.quantizer = build_quantizer(config.quantizer, config.dim)
        self.decoder = FrameDecoder(config.hop_length, config.dim)


class ReachAudioTokenizer(FrameAudioTokenizer):
    """Like :class:`FrameAudioTokenizer`, but each latent also sees ``reach`` hops on each side (a strided conv of
    kernel ``(2 reach + 1) hop``, zero-padded): chunked encoding is exact with that much context, not without."""

    architecture = "test_reach_audio"
    reach = 2

    def __init__(self, config: FrameAudioConfig):
        super().__init__(config)
        hop = config.hop_length
        self.encoder.conv = nn.Conv1d(1, config.dim, (2 * self.reach + 1) * hop, stride=hop, padding=self.reach * hop)


@dataclass
class MeanGraphConfig(TokenizerConfig):
    num_features: int = 6
    dim: int = 4
    quantizer: dict[str, Any] = field(default_factory=lambda: {"type": "vq", "codebook_size": 8})

    def input_spec(self) -> GraphSpec:
        return GraphSpec(num_features=self.num_features)


class MeanAggregateEncoder(Encoder):
    """Each node: linear map of its features plus the mean of its in-neighbours' features."""

    def __init__(self, num_features: int, dim: int):
        super().__init__()
        self.latent_channels = dim
        self.proj = nn.Linear(2 * num_features, dim)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, **context) -> torch.Tensor:
        source, target = edge_index
        total = torch.zeros_like(x).index_add_(0, target, x[source])
        degree = torch.bincount(target, minlength=x.shape[0]).clamp_min(1)[:, None]
        return self.proj(torch.cat([x, total / degree], dim=1))


class LinearNodeDecoder(Decoder):
    def __init__(self, dim: int, num_features: int):
        super().__init__()
        self.proj = nn.Linear(dim, num_features)

    def forward(self, quantized: torch.Tensor, **context) -> torch.Tensor:
        return self.proj(quantized)


class MeanGraphTokenizer(GraphTokenizer):
    architecture = "test_mean_graph"
    config_class = MeanGraphConfig

    def __init__(self, config: MeanGraphConfig):
        super().__init__(config)
        self.encoder = MeanAggregateEncoder(config.num_features, config.dim)
        self.quantizer = build_quantizer(config.quantizer, config.dim)
        self.decoder = LinearNodeDecoder(config.dim, config.num_features)
