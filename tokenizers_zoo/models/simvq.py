"""SimVQ (youngsheen/SimVQ, arXiv 2411.02038): the Open-MAGVIT2 encoder/decoder around a frozen Gaussian basis
mapped through one trainable linear layer.

The quantizer is :class:`~tokenizers_zoo.quantizers.ProjectedQuantizer` with ``table_dim = dim``: a frozen basis
``C`` ``[K, D]`` drawn from N(0, 1) times D^-1/2 and a trainable ``Linear(D, D)`` with bias, codes ``W(C) = C W^T + b``,
nearest code by squared L2. The official loss (``legacy: false``) is ``0.25 * mean((sg(z_q) - z)^2) +
1.0 * mean((z_q - sg(z))^2)`` (the code-side term only reaches ``W`` and ``b``), times ``commit_weight`` 1.0; the
zoo returns the two terms as ``commitment`` and ``codebook``. The straight-through output is ``z_q`` in value
(official: ``z + sg(z_q - z)``, which equals it up to rounding) with the gradient of ``z``.

Fixed here: the official ``get_codebook_entry`` looks indices up in the un-projected basis ``C``, so decoding
from indices gave wrong images; :meth:`SimVQ.decode` uses the projected codes ``W(C)``, as the training pass does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..networks.magvit2 import Magvit2Arch, Magvit2Decoder, Magvit2Encoder
from ..quantizers import build_quantizer
from .image import ImageInput, ImageTokenizer, register_image_model
from .tokenizer import TokenizerConfig


def simvq_quantizer(codebook_size: int) -> dict[str, Any]:
    """SimVQ's quantizer as a config entry: frozen basis x ``Linear(D, D)`` with bias, losses weighted as released."""
    return {"type": "projected", "codebook_size": codebook_size, "bias": True, "beta": 0.25, "codebook_weight": 1.0}


@dataclass
class SimVQConfig(ImageInput, TokenizerConfig, Magvit2Arch):
    """The encoder/decoder shape (:class:`Magvit2Arch`), the quantizer over ``z_channels`` features (no
    ``quant_conv``) and the input."""

    quantizer: dict[str, Any] = field(default_factory=lambda: simvq_quantizer(65_536))


class SimVQ(ImageTokenizer):
    """Encoder -> quantizer -> decoder, as the official ``VQModel``: the encoder output is the quantizer's input
    and the quantized latent is the decoder's input."""

    architecture = "simvq"
    config_class = SimVQConfig

    def __init__(self, config: SimVQConfig):
        super().__init__(config)
        self.encoder = Magvit2Encoder(config, in_channels=config.in_channels)
        self.quantizer = build_quantizer(config.quantizer, config.z_channels)
        self.decoder = Magvit2Decoder(config, out_channels=config.in_channels)


PAPER = "Addressing Representation Collapse in Vector Quantized Models with One Linear Layer"
PAPER_URL = "https://arxiv.org/abs/2411.02038"
OFFICIAL_REPO = "https://github.com/youngsheen/SimVQ"
IMAGENET128 = SimVQConfig(ch=128, ch_mult=(1, 2, 2, 4), num_res_blocks=2, z_channels=128, resolution=128)

# README Table 1: ImageNet 128x128, 50k validation images, EMA weights. LPIPS: the README does not say which
# network (evaluation.py prints AlexNet and VGG); PSNR as reported (evaluation.py averages a whole-batch PSNR,
# issue #16); SSIM reported x100, stored in [0, 1].
RELEASED = {  # codes: (tag, rFID, LPIPS, PSNR dB, SSIM, codebook usage)
    1_024: ("1k", 3.67, 0.16, 22.34, 0.708, 1.0),
    8_192: ("8k", 2.98, 0.14, 23.23, 0.747, 1.0),
    65_536: ("65k", 2.24, 0.12, 24.15, 0.784, 1.0),
    262_144: ("262k", 1.99, 0.11, 24.68, 0.803, 1.0),
}


def _register_released() -> None:
    for codes, (tag, rfid, lpips, psnr, ssim, usage) in RELEASED.items():
        register_image_model(
            f"simvq_{tag}_imagenet128",
            "simvq",
            IMAGENET128.replace(quantizer=simvq_quantizer(codes)),
            description=(
                f"SimVQ on ImageNet at 128x128: Open-MAGVIT2 encoder/decoder (f8, no attention), {codes:,} codes of 128 "
                "as a frozen Gaussian basis through a trainable linear layer. Convert the official checkpoint with "
                "`tokenizers-zoo convert` (EMA weights by default). Decoding indices applies the linear layer (the "
                "official get_codebook_entry returns the un-projected basis row; fixed here)."
            ),
            license="mit",
            paper=PAPER,
            paper_url=PAPER_URL,
            official_repo=OFFICIAL_REPO,
            official_weights=(
                f"https://huggingface.co/youngsheen/SimVQ/tree/main/vq_log/simvq_{tag} (Lightning .ckpt + "
                "size128/config.yaml; the README links it as zyx123/SimVQ)"
            ),
            datasets=("imagenet-1k",),
            metrics={
                "rfid_imagenet128_val50k": rfid,
                "lpips_imagenet128_val50k": lpips,
                "psnr_db_imagenet128_val50k": psnr,
                "ssim_imagenet128_val50k": ssim,
                "codebook_usage_imagenet128_val50k": usage,
            },
        )


_register_released()

TINY_CONFIG = SimVQConfig(ch=32, ch_mult=(1, 2, 2), num_res_blocks=1, z_channels=16, resolution=32, quantizer=simvq_quantizer(1_024))

register_image_model(
    "simvq_tiny",
    "simvq",
    TINY_CONFIG,
    description=(
        "A small SimVQ trained by the zoo: Open-MAGVIT2 encoder/decoder at width 32 (f4), 1,024 codes of 16 "
        "(frozen basis x trainable linear layer), trained on 1,900 CIFAR-10 test images (32x32) by "
        "recipes/simvq_tiny_cifar10.json (EMA weights of the last step). For tests and demos, not research results."
    ),
    license="apache-2.0",
    paper=PAPER,
    paper_url=PAPER_URL,
    official_repo=OFFICIAL_REPO,
    weights="bundled:simvq_tiny",
    datasets=("cifar10",),
    metrics={  # `tokenizers-zoo eval simvq_tiny tests/data/cifar10`: the 100 held-out images
        "psnr_db_cifar10_heldout100": 24.84,
        "ssim_cifar10_heldout100": 0.759,
        "codebook_usage_cifar10_heldout100": 0.976,
        "codebook_perplexity_cifar10_heldout100": 782.1,
    },
)
