"""The LlamaGen VQ encoder trunk and decoder (FoundationVision/LlamaGen ``tokenizer_image/vq_model.py``, used by FQGAN).

The taming VQGAN's blocks (:mod:`.blocks`) arranged differently: attention follows every res block of the
lowest-resolution level only, and the middle is a list ``[res, attn, res]``. Module names follow the official
code (``conv_blocks.{l}.res.{j}``, ``conv_blocks.{l}.attn.{j}``, ``conv_blocks.{l}.downsample.conv``,
``mid.{0,1,2}``; the decoder's ``conv_blocks.{k}`` counts from the lowest resolution, ``k = 0``, and upsamples
with ``conv_blocks.{k}.upsample.conv``), so official state dicts load without renaming. The encoder's end (GN -> swish -> 3x3 conv to ``z_channels``)
is left to the model: FQGAN has one per factor.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ConfigError
from ..interfaces import Decoder, Encoder
from .arch import ConvArch
from .blocks import AttnBlock, Downsample, ResnetBlock, Upsample, group_norm, run_blocks


@dataclass
class LlamaGenArch(ConvArch):
    """Shape of a LlamaGen encoder/decoder pair (model configs extend it). Defaults: VQ-16 (ch 128, ch_mult
    (1, 1, 2, 2, 4), 2 res blocks, z 256: 16x16 latents at 256 px)."""

    ch_mult: tuple[int, ...] = (1, 1, 2, 2, 4)
    dropout: float = 0.0

    def validate(self) -> None:
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        super().validate()


def _level(arch: LlamaGenArch, block_in: int, block_out: int, num_blocks: int, attention: bool) -> nn.Module:
    """One resolution level: ``res`` blocks, each followed by an ``attn`` block when ``attention``."""
    level = nn.Module()
    level.res = nn.ModuleList(
        ResnetBlock(width, block_out, arch.dropout, arch.norm_groups) for width in [block_in] + [block_out] * (num_blocks - 1)
    )
    level.attn = nn.ModuleList(AttnBlock(block_out, arch.norm_groups) for _ in range(num_blocks if attention else 0))
    return level


def _middle(channels: int, arch: LlamaGenArch) -> nn.ModuleList:
    return nn.ModuleList([
        ResnetBlock(channels, channels, arch.dropout, arch.norm_groups),
        AttnBlock(channels, arch.norm_groups),
        ResnetBlock(channels, channels, arch.dropout, arch.norm_groups),
    ])


class LlamaGenTrunk(Encoder):
    """``conv_in``, the downsampling levels and the middle: image ``[B, in_channels, H, W]`` -> features
    ``[B, ch * ch_mult[-1], H / f, W / f]`` (f = 2^(levels - 1)). Attention runs at the latent resolution only."""

    def __init__(self, arch: LlamaGenArch, in_channels: int = 3):
        super().__init__()
        self.latent_channels = arch.ch * arch.ch_mult[-1]
        self.conv_in = nn.Conv2d(in_channels, arch.ch, 3, padding=1)
        self.conv_blocks = nn.ModuleList()
        block_in, last = arch.ch, len(arch.ch_mult) - 1
        for index, mult in enumerate(arch.ch_mult):
            level = _level(arch, block_in, arch.ch * mult, arch.num_res_blocks, attention=index == last)
            block_in = arch.ch * mult
            if index != last:
                level.downsample = Downsample(block_in)
            self.conv_blocks.append(level)
        self.mid = _middle(block_in, arch)

    def attention_positions(self, latent_size: tuple[int, ...]) -> int:
        return latent_size[0] * latent_size[1]

    def forward(self, x: torch.Tensor, **context) -> torch.Tensor:
        h = self.conv_in(x)
        for level in self.conv_blocks:
            h = run_blocks(level.res, level.attn, h)
            if hasattr(level, "downsample"):
                h = level.downsample(h)
        for block in self.mid:
            h = block(h)
        return h


class LlamaGenDecoder(Decoder):
    """Latent ``[B, z_channels, h, w]`` -> image ``[B, out_channels, h * f, w * f]``.

    3x3 ``conv_in``, the middle, then per level from the lowest resolution ``num_res_blocks + 1`` res blocks
    (with attention at the lowest resolution) and, except at the last, nearest x2 + 3x3 conv; GN -> swish ->
    3x3 ``conv_out``.
    """

    def __init__(self, arch: LlamaGenArch, out_channels: int = 3):
        super().__init__()
        block_in = arch.ch * arch.ch_mult[-1]
        self.conv_in = nn.Conv2d(arch.z_channels, block_in, 3, padding=1)
        self.mid = _middle(block_in, arch)
        self.conv_blocks = nn.ModuleList()
        for index, mult in enumerate(reversed(arch.ch_mult)):
            level = _level(arch, block_in, arch.ch * mult, arch.num_res_blocks + 1, attention=index == 0)
            block_in = arch.ch * mult
            if index != len(arch.ch_mult) - 1:
                level.upsample = Upsample(block_in)
            self.conv_blocks.append(level)
        self.norm_out = group_norm(block_in, arch.norm_groups)
        self.conv_out = nn.Conv2d(block_in, out_channels, 3, padding=1)

    def attention_positions(self, latent_size: tuple[int, ...]) -> int:
        return latent_size[0] * latent_size[1]

    def last_layer(self) -> torch.Tensor:
        return self.conv_out.weight

    def forward(self, quantized: torch.Tensor, **context) -> torch.Tensor:
        h = self.conv_in(quantized)
        for block in self.mid:
            h = block(h)
        for level in self.conv_blocks:
            h = run_blocks(level.res, level.attn, h)
            if hasattr(level, "upsample"):
                h = level.upsample(h)
        return self.conv_out(F.silu(self.norm_out(h)))
