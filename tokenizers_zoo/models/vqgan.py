"""The plain VQGAN (taming-transformers, arXiv 2012.09841): the control for every codebook claim.

It is the ``vqvae`` architecture (taming encoder -> 1x1 ``quant_conv`` -> nearest code -> 1x1 ``post_quant_conv``
-> decoder) with a plain, gradient-trained codebook and taming's "legacy" loss weights (commitment 1.0 on
the encoder, 0.25 on the codebook). The released ImageNet models convert with ``tokenizers-zoo convert``
(family ``taming``); ``vqgan_tiny`` is the CPU-sized control with the same backbone as ``vqgan_lc_tiny``.
"""

from __future__ import annotations

from .image import register_image_model
from .vqvae import VQVAEConfig

PAPER = "Taming Transformers for High-Resolution Image Synthesis"
PAPER_URL = "https://arxiv.org/abs/2012.09841"
REPO = "https://github.com/CompVis/taming-transformers"
TAMING_VQ = {"type": "vq", "beta": 1.0, "codebook_weight": 0.25}


def _imagenet_f16(codebook_size: int) -> VQVAEConfig:
    """``vqgan_imagenet_f16_*``'s ``model.yaml``: ch 128, ch_mult (1,1,2,2,4), 2 blocks, attention at 16, z 256."""
    return VQVAEConfig(
        ch=128, ch_mult=(1, 1, 2, 2, 4), num_res_blocks=2, attn_resolutions=(16,), resolution=256, z_channels=256,
        embed_dim=256, quantizer={**TAMING_VQ, "codebook_size": codebook_size},
    )


# (codes, the README's heibox folder, reconstruction FID against ImageNet val as the README reports it)
for codebook_size, folder, rfid in ((1024, "8088892a516d4e3baf92", 7.94), (16384, "a7530b09fed84f80a887", 4.98)):
    register_image_model(
        f"vqgan_imagenet_f16_{codebook_size}",
        "vqvae",
        _imagenet_f16(codebook_size),
        description=(
            f"taming-transformers' VQGAN trained on ImageNet: f16 (16x16 tokens at 256 px), {codebook_size:,} codes "
            "of 256, plain nearest-code quantizer. Official checkpoints (`last.ckpt`) convert with "
            "`tokenizers-zoo convert last.ckpt --family taming`."
        ),
        license="mit",
        paper=PAPER,
        paper_url=PAPER_URL,
        official_repo=REPO,
        official_weights=f"https://heibox.uni-heidelberg.de/d/{folder}/ (taming-transformers README)",
        datasets=("imagenet-1k",),
        metrics={"rfid_imagenet_val": rfid},
    )

TINY_CONFIG = VQVAEConfig(
    ch=32, ch_mult=(1, 2, 2), num_res_blocks=1, attn_resolutions=(), resolution=32, z_channels=32,
    embed_dim=8, quantizer={**TAMING_VQ, "codebook_size": 1024},
)

register_image_model(
    "vqgan_tiny",
    "vqvae",
    TINY_CONFIG,
    description=(
        "The plain-VQ control at CPU size: the backbone of `vqgan_lc_tiny` (taming encoder/decoder, 32 channels, "
        "f4) with a gradient-trained codebook of 1,024 x 8 and taming's loss weights. For tests, recipes and claims."
    ),
    license="apache-2.0",
    paper=PAPER,
    paper_url=PAPER_URL,
    official_repo=REPO,
)
