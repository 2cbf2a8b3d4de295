"""VQGAN-LC (arXiv 2406.11837): the taming VQGAN with a frozen 100,000-code table under a trained projector.

VQGAN-LC is the ``vqvae`` architecture (encoder -> 1x1 ``quant_conv`` -> quantizer -> 1x1 ``post_quant_conv``
-> decoder, as in ``vqgan-gpt-lc/models/models_vq.py``) with the ``lc`` quantizer: codes ``E = C W^T + b``
from the frozen ``[N, 768]`` table ``C`` of CLIP-feature centroids, latents of ``e`` = 8 (f16) or 4 (f8)
features matched by squared L2 distance. Official checkpoints convert with ``tokenizers-zoo convert``.

Decoding follows ``z_to_image`` of the official ``models/models_gpt.py``: ``E[idx]`` -> ``post_quant_conv`` ->
decoder. The official ``VQModel.decode_code`` is broken (it reads ``self.quantize.embedding``, but ``quantize``
is a method there); the zoo's ``decode`` is the working path.
"""

from __future__ import annotations

from .image import register_image_model
from .vqvae import VQVAEConfig

PAPER = "Scaling the Codebook Size of VQGAN to 100,000 with a Utilization Rate of 99%"
PAPER_URL = "https://arxiv.org/abs/2406.11837"
REPO = "https://github.com/zh460045050/VQGAN-LC"
DRIVE = "https://drive.google.com/drive/folders/12824gtaR_upGH1DJRNfAjQFiw8c1FmwJ"
MIRROR = "https://huggingface.co/wufuheng/VQ"
NO_LICENCE = "The official repository has no licence file, so the terms of its code and weights are unknown."


def _config(ch_mult: tuple[int, ...], attention: tuple[int, ...], embed_dim: int, codebook_size: int) -> VQVAEConfig:
    """A released VQGAN-LC: the taming backbone of ``vqgan_configs/vq-f*.yaml`` (ch 128, 2 res blocks, z 256, 256 px)."""
    return VQVAEConfig(
        ch=128, ch_mult=ch_mult, num_res_blocks=2, attn_resolutions=attention, resolution=256, z_channels=256,
        embed_dim=embed_dim, quantizer={"type": "lc", "codebook_size": codebook_size, "table_dim": 768},
    )


def _register(name: str, config: VQVAEConfig, file: str, summary: str, metrics: dict[str, float]) -> None:
    register_image_model(
        name,
        "vqvae",
        config,
        description=f"VQGAN-LC {summary}, trained on ImageNet at 256x256. {NO_LICENCE}",
        license="unknown",
        paper=PAPER,
        paper_url=PAPER_URL,
        official_repo=REPO,
        official_weights=f"{DRIVE} ({file}; convert with --trust-pickle); unofficial third-party mirror: {MIRROR}",
        datasets=("imagenet-1k",),
        metrics=metrics,
    )


_register(
    "vqgan_lc_f16_100k_dim8",
    _config((1, 1, 2, 2, 4), (16,), 8, 100_000),
    "vqgan-lc-100K-f16-dim8.pth",
    "f16 (16x16 tokens), 100,000 codes of 8 dims projected from a frozen 100,000 x 768 CLIP-feature table",
    {"rfid_imagenet_val_256": 2.62, "codebook_usage_imagenet_val_256": 0.999},
)
# vq-f8.yaml lists attn_resolutions [16], a resolution its four levels (256..32 px) never reach: no attention
# outside the middle blocks, so the entry says () as the converter infers from the checkpoint.
_register(
    "vqgan_lc_f8_100k_dim4",
    _config((1, 2, 2, 4), (), 4, 100_000),
    "vqgan-lc-100K-f8-dim4.pth",
    "f8 (32x32 tokens), 100,000 codes of 4 dims projected from a frozen 100,000 x 768 CLIP-feature table",
    {"rfid_imagenet_val_256": 1.29, "codebook_usage_imagenet_val_256": 0.995},
)
_register(
    "vqgan_lc_f16_16k_dim8",
    _config((1, 1, 2, 2, 4), (16,), 8, 16_384),
    "vqgan-lc-16384-f16-dim8.pth",
    "f16 (16x16 tokens), 16,384 codes of 8 dims projected from a frozen 16,384 x 768 CLIP-feature table "
    "(released after the paper; rFID from the paper's codebook-size ablation)",
    {"rfid_imagenet_val_256": 3.01},
)

TINY_CONFIG = VQVAEConfig(
    ch=32, ch_mult=(1, 2, 2), num_res_blocks=1, attn_resolutions=(), resolution=32, z_channels=32,
    embed_dim=8, quantizer={"type": "lc", "codebook_size": 1024, "table_dim": 64},
)

register_image_model(
    "vqgan_lc_tiny",
    "vqvae",
    TINY_CONFIG,
    description=(
        "A CPU-sized VQGAN-LC for tests and recipes: taming encoder/decoder (32 channels, f4), a frozen table of "
        "1,024 x 64 under a trained Linear(64, 8). Its table is a random basis until `tokenizers-zoo "
        "build-codebook` fills it with k-means centroids of pooled patch features."
    ),
    license="apache-2.0",
    paper=PAPER,
    paper_url=PAPER_URL,
    official_repo=REPO,
)
