"""The Vocos decoder as WavTokenizer extends it (gemelo-ai/vocos ``models.py``, ``heads.py``, ``spectral_ops.py``).

Latent ``[B, C, F]`` -> ``embed`` (conv k7) -> ``pos_net`` (two res blocks, single-head self-attention over all
frames, two res blocks, GroupNorm: WavTokenizer's addition, run *before* the ConvNeXt stack) -> ``norm`` -> ConvNeXt
blocks -> ``final_layer_norm`` -> ISTFT head: ``Linear(dim, n_fft + 2)`` gives log-magnitude and phase, the
magnitude is ``exp`` clipped at 100, and an inverse STFT with "same" padding gives exactly ``F * hop`` samples.
With ``adanorm_num_embeddings`` the norms are AdaLayerNorm rows picked by ``bandwidth_id`` (WavTokenizer: 4 rows,
row 0 at inference); without, plain LayerNorms (SimVQ-audio). Module names are the official ones under
``backbone.*`` and ``head.*``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..config import Config, ConfigError, check_positive
from ..interfaces import Decoder
from .blocks import AttnBlock, ResnetBlock, group_norm

NORM_EPS = 1e-6
POS_NET_DROPOUT = 0.1
MAX_MAGNITUDE = 1e2  # the official safeguard against exploding magnitudes
MIN_ENVELOPE = 1e-11


@dataclass
class VocosArch(Config):
    """``num_layers`` ConvNeXt blocks of width ``backbone_dim`` (hidden ``intermediate_dim``), AdaLayerNorm with
    ``adanorm_num_embeddings`` rows (``None``: plain LayerNorm), an ISTFT head of size ``n_fft`` (window = n_fft)."""

    backbone_dim: int = 768
    intermediate_dim: int = 2304
    num_layers: int = 12
    adanorm_num_embeddings: int | None = 4
    n_fft: int = 1280

    def validate(self) -> None:
        check_positive(self, "backbone_dim", "intermediate_dim", "num_layers", "adanorm_num_embeddings", "n_fft")
        if self.backbone_dim % 32:
            raise ConfigError(f"backbone_dim must be a multiple of 32 (pos_net's GroupNorm groups), got {self.backbone_dim}")
        super().validate()


class AdaLayerNorm(nn.Module):
    """LayerNorm without affine parameters, then the ``scale`` and ``shift`` rows of the condition id."""

    def __init__(self, num_embeddings: int, dim: int):
        super().__init__()
        self.scale = nn.Embedding(num_embeddings, dim)
        self.shift = nn.Embedding(num_embeddings, dim)
        nn.init.ones_(self.scale.weight)
        nn.init.zeros_(self.shift.weight)

    def forward(self, x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        normed = F.layer_norm(x, x.shape[-1:], eps=NORM_EPS)
        return normed * self.scale(ids)[:, None] + self.shift(ids)[:, None]


def _norm(dim: int, adanorm_num_embeddings: int | None) -> nn.Module:
    return nn.LayerNorm(dim, eps=NORM_EPS) if adanorm_num_embeddings is None else AdaLayerNorm(adanorm_num_embeddings, dim)


def _apply_norm(norm: nn.Module, x: torch.Tensor, ids: torch.Tensor | None) -> torch.Tensor:
    return norm(x) if ids is None else norm(x, ids)


class ConvNeXtBlock(nn.Module):
    """Depthwise conv k7 -> norm -> Linear -> GELU -> Linear -> layer scale ``gamma``, plus the residual."""

    def __init__(self, dim: int, intermediate_dim: int, layer_scale: float, adanorm_num_embeddings: int | None):
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, 7, padding=3, groups=dim)
        self.norm = _norm(dim, adanorm_num_embeddings)
        self.pwconv1 = nn.Linear(dim, intermediate_dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(intermediate_dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), layer_scale))

    def forward(self, x: torch.Tensor, ids: torch.Tensor | None) -> torch.Tensor:
        h = _apply_norm(self.norm, self.dwconv(x).transpose(1, 2), ids)
        h = self.gamma * self.pwconv2(self.act(self.pwconv1(h)))
        return x + h.transpose(1, 2)


class VocosBackbone(nn.Module):
    """Latent ``[B, input_channels, F]`` -> features ``[B, F, backbone_dim]``."""

    def __init__(self, arch: VocosArch, input_channels: int):
        super().__init__()
        dim = arch.backbone_dim
        self.adanorm_num_embeddings = arch.adanorm_num_embeddings
        self.embed = nn.Conv1d(input_channels, dim, 7, padding=3)
        self.norm = _norm(dim, arch.adanorm_num_embeddings)
        self.convnext = nn.ModuleList(
            ConvNeXtBlock(dim, arch.intermediate_dim, 1 / arch.num_layers, arch.adanorm_num_embeddings) for _ in range(arch.num_layers)
        )
        self.final_layer_norm = nn.LayerNorm(dim, eps=NORM_EPS)
        self.apply(_truncated_normal_init)  # as upstream: before pos_net exists, which keeps PyTorch's defaults
        self.pos_net = nn.Sequential(
            ResnetBlock(dim, dim, POS_NET_DROPOUT, dims=1),
            ResnetBlock(dim, dim, POS_NET_DROPOUT, dims=1),
            AttnBlock(dim, dims=1),
            ResnetBlock(dim, dim, POS_NET_DROPOUT, dims=1),
            ResnetBlock(dim, dim, POS_NET_DROPOUT, dims=1),
            group_norm(dim),
        )

    def condition_ids(self, bandwidth_id: int | torch.Tensor | None, batch: int, device: torch.device) -> torch.Tensor | None:
        """``bandwidth_id`` (an int, or an int64 tensor ``[]``, ``[1]`` or ``[B]``) as ``[B]`` row ids; ``None`` without rows."""
        rows = self.adanorm_num_embeddings
        if rows is None:
            if bandwidth_id not in (None, 0):
                raise ValueError(f"this decoder has no bandwidth rows (plain LayerNorm): bandwidth_id must be 0 or None, got {bandwidth_id!r}")
            return None
        if bandwidth_id is None:
            bandwidth_id = 0
        if isinstance(bandwidth_id, bool) or not isinstance(bandwidth_id, (int, torch.Tensor)):
            raise TypeError(f"bandwidth_id must be an int or an int64 tensor, got {type(bandwidth_id).__name__}")
        ids = torch.as_tensor(bandwidth_id, device=device)
        if ids.is_floating_point() or ids.dtype == torch.bool or ids.ndim > 1 or ids.numel() not in (1, batch):
            raise ValueError(f"bandwidth_id must be one integer or one per item ({batch}), got {bandwidth_id!r}")
        if int(ids.min()) < 0 or int(ids.max()) >= rows:
            raise ValueError(f"bandwidth_id must be in [0, {rows}), got {ids.tolist()}")
        return ids.reshape(-1).to(torch.int64).expand(batch)

    def forward(self, x: torch.Tensor, bandwidth_id: int | torch.Tensor | None = 0) -> torch.Tensor:
        ids = self.condition_ids(bandwidth_id, x.shape[0], x.device)
        h = self.pos_net(self.embed(x))
        h = _apply_norm(self.norm, h.transpose(1, 2), ids).transpose(1, 2)
        for block in self.convnext:
            h = block(h, ids)
        return self.final_layer_norm(h.transpose(1, 2))


def _truncated_normal_init(module: nn.Module) -> None:
    if isinstance(module, (nn.Conv1d, nn.Linear)):
        nn.init.trunc_normal_(module.weight, std=0.02)
        nn.init.zeros_(module.bias)


class ISTFT(nn.Module):
    """Inverse STFT with "same" padding: ``[B, n_fft // 2 + 1, F]`` complex -> ``[B, F * hop]`` real.

    ``irfft`` of each frame times a Hann window, overlap-added, ``(n_fft - hop) / 2`` samples trimmed from each
    end, divided by the overlap-added squared window. ``torch.istft`` cannot do this: it checks the window
    envelope over the untrimmed ends, where a Hann window is zero. The window is a buffer, as upstream.
    """

    def __init__(self, n_fft: int, hop_length: int):
        super().__init__()
        if hop_length < 1 or n_fft <= hop_length or (n_fft - hop_length) % 2:
            raise ValueError(f"'same' padding needs n_fft > hop_length with an even difference, got n_fft={n_fft}, hop_length={hop_length}")
        self.n_fft, self.hop_length = n_fft, hop_length
        self.register_buffer("window", torch.hann_window(n_fft))

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        frames = spec.shape[-1]
        window = self.window.float()
        pad = (self.n_fft - self.hop_length) // 2
        segments = torch.fft.irfft(spec, self.n_fft, dim=1) * window[None, :, None]
        audio = self._overlap_add(segments)[:, pad:-pad]
        envelope = self._overlap_add(window.square()[None, :, None].expand(1, -1, frames))[0, pad:-pad]
        if bool((envelope <= MIN_ENVELOPE).any()):
            raise ValueError(f"the window envelope vanishes for n_fft={self.n_fft}, hop_length={self.hop_length}")
        return audio / envelope

    def _overlap_add(self, segments: torch.Tensor) -> torch.Tensor:
        length = (segments.shape[-1] - 1) * self.hop_length + self.n_fft
        return F.fold(segments, (1, length), (1, self.n_fft), stride=(1, self.hop_length))[:, 0, 0]


class ISTFTHead(nn.Module):
    """Features ``[B, F, dim]`` -> waveform ``[B, F * hop]``: log-magnitude and phase from ``out``, then :class:`ISTFT`.

    The spectral part runs in float32 (also under autocast)."""

    def __init__(self, dim: int, n_fft: int, hop_length: int):
        super().__init__()
        self.out = nn.Linear(dim, n_fft + 2)
        self.istft = ISTFT(n_fft, hop_length)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        log_magnitude, phase = self.out(x).transpose(1, 2).float().chunk(2, dim=1)
        with torch.autocast(x.device.type, enabled=False):
            magnitude = log_magnitude.exp().clip(max=MAX_MAGNITUDE)
            return self.istft(torch.polar(magnitude, phase))


class VocosDecoder(Decoder):
    """Quantized latent ``[B, input_channels, F]`` -> waveform ``[B, F * hop_length]`` (``backbone`` then ``head``)."""

    def __init__(self, arch: VocosArch, input_channels: int, hop_length: int):
        super().__init__()
        self.backbone = VocosBackbone(arch, input_channels)
        self.head = ISTFTHead(arch.backbone_dim, arch.n_fft, hop_length)

    def forward(self, quantized: torch.Tensor, bandwidth_id: int | torch.Tensor | None = 0, **context) -> torch.Tensor:
        return self.head(self.backbone(quantized, bandwidth_id))

    def attention_positions(self, latent_size: tuple[int, ...]) -> int:
        return latent_size[-1]

    def last_layer(self) -> torch.Tensor:
        return self.head.out.weight
