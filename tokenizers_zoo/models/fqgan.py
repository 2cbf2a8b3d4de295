"""FQGAN (showlab/FQGAN, arXiv 2411.16681): factorized quantization, one small codebook per factor.

The LlamaGen encoder trunk feeds one head per factor (``vis``, then ``sem`` for Dual, or ``sem_mid`` and
``sem_high`` for Triple): a :class:`~tokenizers_zoo.networks.transformer.FactorizedAdapter` (6 pre-LN blocks at
the trunk's width ``ch * ch_mult[-1]``, which the official code hard-codes as 512, with a positional embedding for
the ``resolution / f`` token grid, hard-coded there as ``256 // f``), GN -> swish -> 3x3 ``conv_out_<f>``, then a
1x1 ``quant_conv_<f>`` to 8 features. The factors' latents are stacked on dim 1 and quantized by a ``vq``
quantizer with one group per factor: its own cosine codebook of 16,384 x 8 each. The quantized factors, so
concatenated in factor order, go through ``post_quant_conv`` into the LlamaGen decoder. Indices are
``[B, F, h, w]`` in that order (visual first).

Losses as released: L2 reconstruction; per factor codebook 1.0 + commitment 0.25 + entropy 0.03 (the quantizer's);
``disentanglement`` (weight 0.1): the mean over positions of ``cos(q_a, q_b)^2`` between the quantized factors,
averaged over factor pairs. The alignment of semantic factors with frozen vision teachers is a training objective
(:mod:`tokenizers_zoo.objectives.alignment`), which reads the quantized factors from ``out.extras["factors"]``.
The official adapters' positional embedding fixes the input size: images must be ``resolution`` square.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ConfigError, check_positive
from ..networks.blocks import group_norm
from ..networks.llamagen import LlamaGenArch, LlamaGenDecoder, LlamaGenTrunk
from ..networks.transformer import FactorizedAdapter
from ..outputs import TokenizerOutput
from ..quantizers import build_quantizer
from .image import ImageInput, ImageTokenizer, register_image_model
from .tokenizer import TokenizerConfig

DUAL, TRIPLE = ("vis", "sem"), ("vis", "sem_mid", "sem_high")
FACTOR_NAME = re.compile(r"vis|sem(_[a-z0-9]+)?")


def fqgan_quantizer(factors: int, codebook_size: int = 16_384) -> dict[str, Any]:
    """One cosine VQ per factor, losses as released (codebook 1.0, commitment 0.25, entropy 0.03 at
    temperature 0.01), summed over the factors."""
    return {
        "type": "vq", "groups": factors, "codebook_size": codebook_size, "metric": "cosine",
        "beta": 0.25, "codebook_weight": 1.0, "entropy_weight": 0.03, "entropy_temperature": 0.01,
    }


def head_name(factor: str) -> str:
    """The official name of a factor's adapter: ``visual_head``, ``semantic_head``, ``semantic_head_mid`` ..."""
    return "visual_head" if factor == "vis" else "semantic_head" + factor[len("sem"):]


@dataclass
class FQGANConfig(ImageInput, TokenizerConfig, LlamaGenArch):
    """The trunk and decoder (:class:`LlamaGenArch`), the factors in decoder order, each factor's code size
    ``embed_dim``, the adapters (``adapter_layers`` blocks of ``adapter_heads`` heads at the trunk's width
    ``ch * ch_mult[-1]``, over the ``resolution / f`` square token grid) and the input."""

    factors: tuple[str, ...] = DUAL
    embed_dim: int = 8
    adapter_layers: int = 6
    adapter_heads: int = 8
    quantizer: dict[str, Any] = field(default_factory=lambda: fqgan_quantizer(2))
    reconstruction_loss: str = "mse"
    loss_weights: dict[str, float] = field(default_factory=lambda: {"disentanglement": 0.1})

    def validate(self) -> None:
        check_positive(self, "embed_dim", "adapter_layers", "adapter_heads")
        if len(self.factors) < 2 or len(set(self.factors)) != len(self.factors):
            raise ConfigError(f"factors must name at least two distinct factors, got {list(self.factors)}")
        unknown = [name for name in self.factors if not FACTOR_NAME.fullmatch(name)]
        if unknown:
            raise ConfigError(f"factor names must be 'vis' or 'sem' / 'sem_<suffix>' (the official module names), got {unknown}")
        super().validate()
        width = self.ch * self.ch_mult[-1]
        if width % self.adapter_heads:
            raise ConfigError(f"the adapters' width {width} (ch * ch_mult[-1]) cannot be split into {self.adapter_heads} heads")
        if self.resolution % self.downsample_factor:
            raise ConfigError(f"resolution {self.resolution} is not a multiple of the downsampling factor {self.downsample_factor}")


class FQGANEncoder(LlamaGenTrunk):
    """The LlamaGen trunk, then per factor ``f``: ``<head_name(f)>.0`` (an adapter), ``norm_out_<f>`` (GN),
    swish, ``conv_out_<f>`` (3x3 to ``z_channels``). Returns the factors' features stacked on dim 1,
    ``[B, F * z_channels, h, w]`` in factor order."""

    def __init__(self, config: FQGANConfig):
        super().__init__(config, config.in_channels)
        width, grid = config.ch * config.ch_mult[-1], config.resolution // config.downsample_factor
        self.factors = config.factors
        for factor in config.factors:
            adapter = FactorizedAdapter(grid, width, config.adapter_layers, config.adapter_heads)
            self.add_module(head_name(factor), nn.ModuleList([adapter]))
            self.add_module(f"norm_out_{factor}", group_norm(width, config.norm_groups))
            self.add_module(f"conv_out_{factor}", nn.Conv2d(width, config.z_channels, 3, padding=1))
        self.latent_channels = len(config.factors) * config.z_channels

    def forward(self, x: torch.Tensor, **context) -> torch.Tensor:
        trunk = super().forward(x)
        heads = []
        for factor in self.factors:
            h = getattr(self, head_name(factor))[0](trunk)
            heads.append(getattr(self, f"conv_out_{factor}")(F.silu(getattr(self, f"norm_out_{factor}")(h))))
        return torch.cat(heads, dim=1)


def disentanglement_loss(factors: list[torch.Tensor]) -> torch.Tensor:
    """Mean over pairs of factors ``[B, d, h, w]`` of the mean over positions of ``cos(a, b)^2`` (the official
    ``compute_disentangle_loss``; Triple averages its three pairs)."""
    unit = [F.normalize(factor.float(), dim=1) for factor in factors]
    return torch.stack([(a * b).sum(1).square().mean() for a, b in itertools.combinations(unit, 2)]).mean()


class FQGAN(ImageTokenizer):
    """Encoder (trunk + factor heads) -> ``quant_conv_<f>`` per factor -> one VQ per factor -> concatenation ->
    ``post_quant_conv`` -> decoder. ``encode(x).latents`` holds the factor latents stacked in factor order
    ``[B, F * embed_dim, h, w]``; ``encode(x).indices`` is ``[B, F, h, w]``."""

    architecture = "fqgan"
    config_class = FQGANConfig
    loss_names = ("disentanglement",)

    def __init__(self, config: FQGANConfig):
        super().__init__(config)
        factors, code = config.factors, config.embed_dim
        self.encoder = FQGANEncoder(config)
        for factor in factors:
            self.add_module(f"quant_conv_{factor}", nn.Conv2d(config.z_channels, code, 1))
        self.quantizer = build_quantizer(config.quantizer, len(factors) * code)
        if self.quantizer.num_groups != len(factors):
            raise ConfigError(f"the quantizer must have one group per factor ({len(factors)}), it has {self.quantizer.num_groups}")
        self.post_quant_conv = nn.Conv2d(len(factors) * code, config.z_channels, 1)
        self.decoder = LlamaGenDecoder(config, out_channels=config.in_channels)

    def encode_latents(self, images: torch.Tensor, **context) -> torch.Tensor:
        features = self.encoder(images).chunk(len(self.config.factors), dim=1)
        return torch.cat([getattr(self, f"quant_conv_{f}")(h) for f, h in zip(self.config.factors, features)], dim=1)

    def decode_latents(self, quantized: torch.Tensor, **context) -> torch.Tensor:
        return self.decoder(self.post_quant_conv(quantized))

    def validate_input(self, x: torch.Tensor, context: dict[str, Any]) -> None:
        super().validate_input(x, context)
        size = self.config.resolution
        if tuple(x.shape[-2:]) != (size, size):
            raise ValueError(
                f"FQGAN's adapters have positional embeddings for a fixed token grid: images must be {size}x{size}, "
                f"got {x.shape[-2]}x{x.shape[-1]}; resize or crop first"
            )

    def extra_losses(self, x: torch.Tensor, out: TokenizerOutput, **context) -> dict[str, torch.Tensor]:
        """The disentanglement term; puts the quantized factors ``{name: [B, embed_dim, h, w]}`` in
        ``out.extras["factors"]`` for the alignment objective."""
        factors = dict(zip(self.config.factors, out.extras["quantized"].split(self.config.embed_dim, dim=1)))
        out.extras["factors"] = factors
        return {"disentanglement": disentanglement_loss(list(factors.values()))}


PAPER = "Factorized Visual Tokenization and Generation"
PAPER_URL = "https://arxiv.org/abs/2411.16681"
OFFICIAL_REPO = "https://github.com/showlab/FQGAN"
WEIGHTS = "https://huggingface.co/ZechenBai/FQGAN/resolve/main"
LICENCE = (
    "Licence: CC BY-NC 4.0 (non-commercial research use only), for the official code and weights and for "
    "anything converted from them."
)
# README and Table 1 (assets/Tab_Tok.png): ImageNet 256x256, 50k validation images.
RELEASED = {  # name: (factors, ch_mult, rFID, PSNR dB)
    "fqgan_dual_ds16": (DUAL, (1, 1, 2, 2, 4), 0.94, 22.02),
    "fqgan_triple_ds16": (TRIPLE, (1, 1, 2, 2, 4), 0.76, 22.73),
    "fqgan_dual_ds8": (DUAL, (1, 2, 2, 4), 0.32, 26.27),
    "fqgan_triple_ds8": (TRIPLE, (1, 2, 2, 4), 0.24, 27.58),
}


def _register_released() -> None:
    for name, (factors, ch_mult, rfid, psnr) in RELEASED.items():
        config = FQGANConfig(
            ch=128, ch_mult=ch_mult, num_res_blocks=2, z_channels=256, resolution=256, factors=factors,
            quantizer=fqgan_quantizer(len(factors)),
        )
        kind = "Dual" if factors == DUAL else "Triple"
        register_image_model(
            name,
            "fqgan",
            config,
            description=(
                f"FQGAN-{kind} on ImageNet at 256x256: LlamaGen encoder trunk (f{config.downsample_factor}) with one "
                f"6-layer transformer adapter per factor ({', '.join(factors)}), {len(factors)} cosine codebooks of "
                "16,384 x 8, LlamaGen decoder. Convert the official .pt with `tokenizers-zoo convert --trust-pickle` "
                f"(EMA weights when the file has them). {LICENCE}"
            ),
            license="cc-by-nc-4.0",
            paper=PAPER,
            paper_url=PAPER_URL,
            official_repo=OFFICIAL_REPO,
            official_weights=f"{WEIGHTS}/{name}.pt (torch.save dict with pickled args: convert with --trust-pickle)",
            datasets=("imagenet-1k",),
            metrics={"rfid_imagenet256_val50k": rfid, "psnr_db_imagenet256_val50k": psnr},
        )


_register_released()

TINY_CONFIG = FQGANConfig(
    ch=32, ch_mult=(1, 2, 2), num_res_blocks=1, z_channels=64, resolution=32, adapter_layers=1, adapter_heads=2,
    quantizer=fqgan_quantizer(2, codebook_size=256),
)

register_image_model(
    "fqgan_tiny",
    "fqgan",
    TINY_CONFIG,
    description=(
        "A CPU-sized FQGAN-Dual for tests and recipes: LlamaGen trunk and decoder at width 32 (f4, 8x8 tokens at "
        "32 px), one 1-layer adapter of width 64 per factor (vis, sem), two cosine codebooks of 256 x 8. Untrained."
    ),
    license="apache-2.0",
    paper=PAPER,
    paper_url=PAPER_URL,
    official_repo=OFFICIAL_REPO,
)
