"""The reference model: a convolutional VQ-VAE (taming VQGAN encoder/decoder, no GAN) on images.

``vqvae_tiny`` is trained on a 1,900-image CIFAR-10 subset by ``recipes/vqvae_tiny_cifar10.json`` and
ships inside the package, so every path of the zoo (registry, Hub format, CLI) works offline.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..config import check_positive
from ..quantizers import build_quantizer
from ..networks.taming import TamingArch, TamingDecoder, TamingEncoder
from .image import ImageInput, ImageTokenizer, register_image_model
from .tokenizer import TokenizerConfig


@dataclass
class VQVAEConfig(ImageInput, TokenizerConfig, TamingArch):
    """The encoder/decoder shape (:class:`TamingArch`, default VQGAN f16: 16x16 tokens at 256 px) plus the
    quantizer, its latent size ``embed_dim`` and the input."""

    embed_dim: int = 256

    def validate(self) -> None:
        check_positive(self, "embed_dim")
        super().validate()


class VQVAE(ImageTokenizer):
    """Encoder -> 1x1 ``quant_conv`` -> quantizer -> 1x1 ``post_quant_conv`` -> decoder."""

    architecture = "vqvae"
    config_class = VQVAEConfig

    def __init__(self, config: VQVAEConfig):
        super().__init__(config)
        self.encoder = TamingEncoder(config, in_channels=config.in_channels)
        self.quant_conv = nn.Conv2d(config.z_channels, config.embed_dim, 1)
        self.quantizer = build_quantizer(config.quantizer, config.embed_dim)
        self.post_quant_conv = nn.Conv2d(config.embed_dim, config.z_channels, 1)
        self.decoder = TamingDecoder(config, out_channels=config.in_channels)

    def encode_latents(self, images: torch.Tensor, **context) -> torch.Tensor:
        return self.quant_conv(self.encoder(images))

    def decode_latents(self, quantized: torch.Tensor, **context) -> torch.Tensor:
        return self.decoder(self.post_quant_conv(quantized))


TINY_CONFIG = VQVAEConfig(
    ch=32,
    ch_mult=(1, 2, 2),
    num_res_blocks=1,
    attn_resolutions=(),
    resolution=32,
    z_channels=64,
    embed_dim=16,
    quantizer={"type": "vq", "codebook_size": 512, "ema": True, "decay": 0.99,
               "kmeans_init": True, "dead_code_threshold": 0.25},
)

register_image_model(
    "vqvae_tiny",
    "vqvae",
    TINY_CONFIG,
    description=(
        "Reference model of tokenizers_zoo: a small convolutional VQ-VAE (taming VQGAN encoder/decoder, f4, "
        "EMA codebook of 512 x 16) trained on 1,900 CIFAR-10 test images (32x32). For tests and demos, "
        "not for research results."
    ),
    license="apache-2.0",
    paper="Neural Discrete Representation Learning (VQ-VAE)",
    paper_url="https://arxiv.org/abs/1711.00937",
    official_repo="https://github.com/CompVis/taming-transformers (encoder/decoder)",
    weights="bundled:vqvae_tiny",
    datasets=("cifar10",),
    metrics={  # `tokenizers-zoo eval vqvae_tiny tests/data/cifar10`: the 100 held-out images
        "psnr_db_cifar10_heldout100": 24.35,
        "codebook_usage_cifar10_heldout100": 0.99,
        "codebook_perplexity_cifar10_heldout100": 402.6,
    },
)
