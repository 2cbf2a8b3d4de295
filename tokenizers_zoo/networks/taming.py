"""The taming-transformers VQGAN encoder and decoder (used by VQGAN-LC and the reference VQ-VAE).

Module names follow the official code (``down.{l}.block.{j}``, ``mid.attn_1``, ``up.{l}.upsample`` ...), so
official state dicts load without renaming.
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
class TamingArch(ConvArch):
    """Shape of a taming encoder/decoder pair (model configs extend it). Defaults: VQGAN f16 (16x16 latents at 256 px)."""

    ch_mult: tuple[int, ...] = (1, 1, 2, 2, 4)
    attn_resolutions: tuple[int, ...] = (16,)
    dropout: float = 0.0

    def validate(self) -> None:
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        super().validate()

    def attention_scale(self) -> int:
        """Positions of the largest attention layer per latent position: (2^l)^2 for the finest level l
        (counted up from the latent) whose resolution is in ``attn_resolutions``; 1 for the middle block."""
        levels = len(self.ch_mult)
        finest = max((levels - 1 - level for level in range(levels) if self.resolution // 2**level in self.attn_resolutions), default=0)
        return 4**finest


def _stage(arch: TamingArch, block_in: int, block_out: int, num_blocks: int, res: int) -> nn.Module:
    """One resolution level: ``block`` res blocks, each followed by attention when ``res`` is an attention resolution."""
    stage = nn.Module()
    stage.block, stage.attn = nn.ModuleList(), nn.ModuleList()
    for _ in range(num_blocks):
        stage.block.append(ResnetBlock(block_in, block_out, arch.dropout, arch.norm_groups))
        block_in = block_out
        if res in arch.attn_resolutions:
            stage.attn.append(AttnBlock(block_out, arch.norm_groups))
    return stage


def _mid_block(channels: int, arch: TamingArch) -> nn.Module:
    mid = nn.Module()
    mid.block_1 = ResnetBlock(channels, channels, arch.dropout, arch.norm_groups)
    mid.attn_1 = AttnBlock(channels, arch.norm_groups)
    mid.block_2 = ResnetBlock(channels, channels, arch.dropout, arch.norm_groups)
    return mid


def _run_mid(mid: nn.Module, h: torch.Tensor) -> torch.Tensor:
    return mid.block_2(mid.attn_1(mid.block_1(h)))


class TamingEncoder(Encoder):
    """Image ``[B, in_channels, H, W]`` -> latent ``[B, z_channels, H / 2^(L-1), W / 2^(L-1)]`` for L = len(ch_mult).

    Attention follows every res block of a level whose resolution (counted from ``resolution``) is in
    ``attn_resolutions``; the middle always has one attention block.
    """

    def __init__(self, arch: TamingArch, in_channels: int = 3):
        super().__init__()
        self.latent_channels = arch.z_channels
        self.conv_in = nn.Conv2d(in_channels, arch.ch, 3, padding=1)
        self.down = nn.ModuleList()
        block_in, res = arch.ch, arch.resolution
        for level, mult in enumerate(arch.ch_mult):
            stage = _stage(arch, block_in, arch.ch * mult, arch.num_res_blocks, res)
            block_in = arch.ch * mult
            if level != len(arch.ch_mult) - 1:
                stage.downsample = Downsample(block_in)
                res //= 2
            self.down.append(stage)
        self.mid = _mid_block(block_in, arch)
        self.norm_out = group_norm(block_in, arch.norm_groups)
        self.conv_out = nn.Conv2d(block_in, arch.z_channels, 3, padding=1)
        self.attention_scale = arch.attention_scale()

    def attention_positions(self, latent_size: tuple[int, ...]) -> int:
        return latent_size[0] * latent_size[1] * self.attention_scale

    def forward(self, x: torch.Tensor, **context) -> torch.Tensor:
        h = self.conv_in(x)
        for stage in self.down:
            h = run_blocks(stage.block, stage.attn, h)
            if hasattr(stage, "downsample"):
                h = stage.downsample(h)
        h = _run_mid(self.mid, h)
        return self.conv_out(F.silu(self.norm_out(h)))


class TamingDecoder(Decoder):
    """Latent ``[B, z_channels, h, w]`` -> image ``[B, out_channels, h * 2^(L-1), w * 2^(L-1)]``.

    Mirrors :class:`TamingEncoder` with ``num_res_blocks + 1`` res blocks per level; ``up[l]`` is the level
    of resolution ``resolution / 2^l`` (so the decoder runs ``up`` in reverse order).
    """

    def __init__(self, arch: TamingArch, out_channels: int = 3):
        super().__init__()
        block_in = arch.ch * arch.ch_mult[-1]
        res = arch.resolution // 2 ** (len(arch.ch_mult) - 1)
        self.conv_in = nn.Conv2d(arch.z_channels, block_in, 3, padding=1)
        self.mid = _mid_block(block_in, arch)
        stages = []
        for level in reversed(range(len(arch.ch_mult))):
            stage = _stage(arch, block_in, arch.ch * arch.ch_mult[level], arch.num_res_blocks + 1, res)
            block_in = arch.ch * arch.ch_mult[level]
            if level != 0:
                stage.upsample = Upsample(block_in)
                res *= 2
            stages.insert(0, stage)
        self.up = nn.ModuleList(stages)
        self.norm_out = group_norm(block_in, arch.norm_groups)
        self.conv_out = nn.Conv2d(block_in, out_channels, 3, padding=1)
        self.attention_scale = arch.attention_scale()

    def attention_positions(self, latent_size: tuple[int, ...]) -> int:
        return latent_size[0] * latent_size[1] * self.attention_scale

    def last_layer(self) -> torch.Tensor:
        return self.conv_out.weight

    def forward(self, quantized: torch.Tensor, **context) -> torch.Tensor:
        h = _run_mid(self.mid, self.conv_in(quantized))
        for stage in reversed(self.up):
            h = run_blocks(stage.block, stage.attn, h)
            if hasattr(stage, "upsample"):
                h = stage.upsample(h)
        return self.conv_out(F.silu(self.norm_out(h)))
