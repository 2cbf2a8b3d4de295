"""The Open-MAGVIT2 "improved" encoder and decoder (used by SimVQ and WeTok).

A plain convolutional pair without attention: bias-free 3x3 convolutions in the res blocks, stride-2
convolutions to downsample, and a 3x3 convolution to four times the width followed by depth-to-space to
upsample. Module names follow the official ``improved_model.py`` (``down.{l}.block.{j}``,
``down.{l}.downsample``, ``mid_block.{j}``, ``up.{l}.upsample.conv1`` ...), so official state dicts load
under ``encoder.`` / ``decoder.`` without renaming. WeTok's decoder adds adaptive group norms
(``adaptive.{l}``) and, as its generative decoder, a noise input (decoder options, off for SimVQ).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..interfaces import Decoder, Encoder
from .adaptive_norm import AdaptiveGroupNorm, with_noise
from .arch import ConvArch
from .blocks import group_norm


@dataclass
class Magvit2Arch(ConvArch):
    """Shape of an Open-MAGVIT2 encoder/decoder pair (model configs extend it). Defaults: SimVQ's ImageNet
    model (f8: 16x16 latents at 128 px). ``norm_groups`` is 32 in every official model."""

    ch_mult: tuple[int, ...] = (1, 2, 2, 4)
    resolution: int = 128
    z_channels: int = 128


class Magvit2ResBlock(nn.Module):
    """GN -> swish -> conv3x3 -> GN -> swish -> conv3x3, all convolutions bias-free and no dropout, plus a
    bias-free 1x1 ``nin_shortcut`` when the widths differ."""

    def __init__(self, in_channels: int, out_channels: int, norm_groups: int = 32):
        super().__init__()
        self.norm1 = group_norm(in_channels, norm_groups)
        self.norm2 = group_norm(out_channels, norm_groups)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.nin_shortcut = nn.Conv2d(in_channels, out_channels, 1, bias=False) if in_channels != out_channels else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return h + self.nin_shortcut(x)


def depth_to_space(x: torch.Tensor, block: int) -> torch.Tensor:
    """``[B, block^2 * C, H, W]`` -> ``[B, C, block * H, block * W]`` in DCR order: input channel
    ``(i * block + j) * C + c`` lands at output channel ``c``, row offset ``i``, column offset ``j``.

    (``F.pixel_shuffle`` uses the other order, channel ``c * block^2 + i * block + j``.)
    """
    b, channels, h, w = x.shape
    out = channels // block**2
    x = x.reshape(b, block, block, out, h, w).permute(0, 3, 4, 1, 5, 2)
    return x.reshape(b, out, h * block, w * block)


class DepthToSpaceUpsample(nn.Module):
    """Double the resolution: a 3x3 conv (with bias) to four times the width, then :func:`depth_to_space`."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, 4 * channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return depth_to_space(self.conv1(x), 2)


def _res_blocks(in_channels: int, out_channels: int, arch: Magvit2Arch) -> nn.ModuleList:
    """``num_res_blocks`` res blocks, the first going from ``in_channels`` to ``out_channels``."""
    widths = [in_channels] + [out_channels] * arch.num_res_blocks
    return nn.ModuleList(Magvit2ResBlock(a, b, arch.norm_groups) for a, b in zip(widths, widths[1:]))


def _run(blocks: nn.ModuleList, h: torch.Tensor) -> torch.Tensor:
    for block in blocks:
        h = block(h)
    return h


class Magvit2Encoder(Encoder):
    """Image ``[B, in_channels, H, W]`` -> latent ``[B, z_channels, H / 2^(L-1), W / 2^(L-1)]`` for L = len(ch_mult).

    Bias-free conv_in; per level ``num_res_blocks`` res blocks, then (except at the last level) a stride-2
    3x3 conv with bias; ``num_res_blocks`` middle res blocks; GN -> swish -> 1x1 conv_out.
    """

    def __init__(self, arch: Magvit2Arch, in_channels: int = 3):
        super().__init__()
        self.latent_channels = arch.z_channels
        self.conv_in = nn.Conv2d(in_channels, arch.ch, 3, padding=1, bias=False)
        self.down = nn.ModuleList()
        block_in = arch.ch
        for level, mult in enumerate(arch.ch_mult):
            stage = nn.Module()
            stage.block = _res_blocks(block_in, arch.ch * mult, arch)
            block_in = arch.ch * mult
            if level != len(arch.ch_mult) - 1:
                stage.downsample = nn.Conv2d(block_in, block_in, 3, stride=2, padding=1)
            self.down.append(stage)
        self.mid_block = _res_blocks(block_in, block_in, arch)
        self.norm_out = group_norm(block_in, arch.norm_groups)
        self.conv_out = nn.Conv2d(block_in, arch.z_channels, 1)

    def forward(self, x: torch.Tensor, **context) -> torch.Tensor:
        h = self.conv_in(x)
        for stage in self.down:
            h = _run(stage.block, h)
            if hasattr(stage, "downsample"):
                h = stage.downsample(h)
        h = _run(self.mid_block, h)
        return self.conv_out(F.silu(self.norm_out(h)))


class Magvit2Decoder(Decoder):
    """Latent ``[B, z_channels, h, w]`` -> image ``[B, out_channels, h * 2^(L-1), w * 2^(L-1)]``.

    3x3 conv_in with bias; ``num_res_blocks`` middle res blocks; per level, from the coarsest, ``num_res_blocks``
    res blocks then (except at level 0) a depth-to-space upsample; GN -> swish -> 3x3 conv_out. ``up[l]`` is
    the level of width ``ch * ch_mult[l]`` (so the decoder runs ``up`` in reverse order).

    WeTok's options: ``adaptive_norm`` puts an :class:`AdaptiveGroupNorm` styled by the decoder's input latent
    before each level's res blocks (``adaptive[l]``, over the level's input width); ``noise_input`` makes it
    the generative decoder, whose conv_in reads ``cat([latent, noise])`` (``2 * z_channels`` channels; the
    adaptive norms still see the latent alone), with ``noise`` given or drawn from ``generator``.
    """

    def __init__(self, arch: Magvit2Arch, out_channels: int = 3, *, adaptive_norm: bool = False, noise_input: bool = False):
        super().__init__()
        self.noise_input = noise_input
        block_in = arch.ch * arch.ch_mult[-1]
        self.conv_in = nn.Conv2d(arch.z_channels * (2 if noise_input else 1), block_in, 3, padding=1)
        self.mid_block = _res_blocks(block_in, block_in, arch)
        stages, norms = [], []
        for level in reversed(range(len(arch.ch_mult))):
            if adaptive_norm:
                norms.insert(0, AdaptiveGroupNorm(arch.z_channels, block_in, arch.norm_groups))
            stage = nn.Module()
            stage.block = _res_blocks(block_in, arch.ch * arch.ch_mult[level], arch)
            block_in = arch.ch * arch.ch_mult[level]
            if level != 0:
                stage.upsample = DepthToSpaceUpsample(block_in)
            stages.insert(0, stage)
        self.up = nn.ModuleList(stages)
        self.adaptive = nn.ModuleList(norms) if adaptive_norm else None
        self.norm_out = group_norm(block_in, arch.norm_groups)
        self.conv_out = nn.Conv2d(block_in, out_channels, 3, padding=1)

    def last_layer(self) -> torch.Tensor:
        return self.conv_out.weight

    def forward(
        self, quantized: torch.Tensor, noise: torch.Tensor | None = None, generator: torch.Generator | None = None, **context
    ) -> torch.Tensor:
        if self.noise_input:
            h = self.conv_in(with_noise(quantized, noise, generator))
        elif noise is not None or generator is not None:
            raise ValueError("this decoder is deterministic: it takes no noise or generator")
        else:
            h = self.conv_in(quantized)
        h = _run(self.mid_block, h)
        for level in reversed(range(len(self.up))):
            if self.adaptive is not None:
                h = self.adaptive[level](h, quantized)
            stage = self.up[level]
            h = _run(stage.block, h)
            if hasattr(stage, "upsample"):
                h = stage.upsample(h)
        return self.conv_out(F.silu(self.norm_out(h)))
